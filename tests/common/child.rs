//! Servers in child processes (the crash tests kill them with SIGKILL), and a way to wait
//! for what they do without sleeping: the test writes `settle` on the child's stdin, and
//! the child answers `SETTLED` once every follower it runs has handled everything its log
//! holds ([`eventlog::Progress::settled`]).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use actors::Workspace;

/// The request a test writes, one per line.
const SETTLE: &str = "settle";
/// The child's answer, once settled.
const SETTLED: &str = "SETTLED";

/// In the child: answers each `settle` line on stdin with `SETTLED` on stdout once the
/// workspace's followers have settled. Runs on its own thread until stdin closes.
pub fn answer_settle_requests(ws: Workspace, runtime: tokio::runtime::Handle) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { return };
            if line.trim() != SETTLE {
                continue;
            }
            runtime.block_on(ws.progress.settled(&*ws.store));
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{SETTLED}");
            let _ = out.flush();
        }
    });
}

/// A child process started by a test, with its stdin and stdout kept open.
pub struct Kid {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Kid {
    /// Starts `command` and returns it with the first line it prints (its `READY ...`).
    ///
    /// # Panics
    /// When the child cannot start or prints nothing.
    pub fn spawn(mut command: Command) -> (Kid, String) {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the child");
        let stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the child's output");
        (
            Kid {
                child,
                stdin,
                stdout,
            },
            line.trim().to_owned(),
        )
    }

    /// Returns once the child's followers have handled everything in its log (it answers
    /// when they have; a child that dies first fails the test).
    ///
    /// # Panics
    /// When the child does not answer.
    pub fn settle(&mut self) {
        writeln!(self.stdin, "{SETTLE}").expect("write to the child");
        self.stdin.flush().expect("flush to the child");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("the child's answer");
        assert_eq!(line.trim(), SETTLED, "the child's answer to {SETTLE}");
    }

    /// SIGKILL, and reaps it.
    ///
    /// # Panics
    /// When the kill fails.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap the child");
    }
}
