//! Generations of a read model on disk, for blue/green rebuilds.
//!
//! ```text
//! <root>/<model>/CURRENT        names the live generation ("gen-000002")
//! <root>/<model>/gen-000002/    its RocksDB instance
//! ```
//! A rebuild writes a new generation beside the live one, closes it, and then replaces
//! `CURRENT` atomically (write a temporary file, fsync, rename, fsync the directory). A
//! server following `CURRENT` opens the new generation, lets it catch up from its own
//! checkpoint, and only then swaps it in for queries.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The directory of one read model's generations.
#[derive(Debug, Clone)]
pub struct ModelHome {
    dir: PathBuf,
}

const CURRENT: &str = "CURRENT";

impl ModelHome {
    pub fn new(root: &Path, model: &str) -> Self {
        Self {
            dir: root.join(model),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path_of(&self, generation: &str) -> PathBuf {
        self.dir.join(generation)
    }

    /// The live generation, if there is one.
    ///
    /// # Errors
    /// I/O errors other than a missing file.
    pub fn current(&self) -> std::io::Result<Option<String>> {
        match fs::read_to_string(self.dir.join(CURRENT)) {
            Ok(s) => Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The live generation, creating the first one when there is none.
    ///
    /// # Errors
    /// I/O errors.
    pub fn current_or_init(&self) -> std::io::Result<String> {
        if let Some(g) = self.current()? {
            return Ok(g);
        }
        let g = self.new_generation()?;
        self.switch_to(&g)?;
        Ok(g)
    }

    /// Creates the directory of a fresh generation, numbered after every existing one.
    ///
    /// # Errors
    /// I/O errors.
    pub fn new_generation(&self) -> std::io::Result<String> {
        fs::create_dir_all(&self.dir)?;
        let mut highest = 0u64;
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            if let Some(n) = name
                .to_str()
                .and_then(|n| n.strip_prefix("gen-"))
                .and_then(|n| n.parse::<u64>().ok())
            {
                highest = highest.max(n);
            }
        }
        let name = format!("gen-{:06}", highest + 1);
        fs::create_dir(self.dir.join(&name))?;
        Ok(name)
    }

    /// Makes `generation` the live one, atomically.
    ///
    /// # Errors
    /// I/O errors; `CURRENT` is then unchanged.
    pub fn switch_to(&self, generation: &str) -> std::io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join("CURRENT.tmp");
        {
            let mut f = fs::File::create(&tmp)?;
            writeln!(f, "{generation}")?;
            f.sync_all()?;
        }
        fs::rename(&tmp, self.dir.join(CURRENT))?;
        fs::File::open(&self.dir)?.sync_all()
    }

    /// Deletes a generation that is not live.
    ///
    /// # Errors
    /// I/O errors, or refusing to delete the live generation.
    pub fn remove(&self, generation: &str) -> std::io::Result<()> {
        if self.current()?.as_deref() == Some(generation) {
            return Err(std::io::Error::other(
                "refusing to delete the live generation",
            ));
        }
        fs::remove_dir_all(self.dir.join(generation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_count_up_and_switch_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let home = ModelHome::new(dir.path(), "m");
        assert_eq!(home.current().unwrap(), None);
        let first = home.current_or_init().unwrap();
        assert_eq!(first, "gen-000001");
        assert_eq!(home.current_or_init().unwrap(), first);
        let second = home.new_generation().unwrap();
        assert_eq!(second, "gen-000002");
        assert_eq!(home.current().unwrap().as_deref(), Some("gen-000001"));
        home.switch_to(&second).unwrap();
        assert_eq!(home.current().unwrap().as_deref(), Some("gen-000002"));
        assert!(home.remove(&second).is_err());
        home.remove(&first).unwrap();
        assert!(!home.path_of(&first).exists());
    }
}
