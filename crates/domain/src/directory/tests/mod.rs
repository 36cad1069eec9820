//! Directory tests: one file per concept, all starting from the same small organization.

mod contacts;
mod numbers;
mod properties;
mod users;

use crate::command_meta::{CommandMeta, Issued, Role};
use crate::directory::{
    Directory, DirectoryCommand, DirectoryEvent, DirectoryRejection, Extension,
};
use crate::ids::{OrgId, UserId};
use crate::testkit::Harness;

/// An organization with an admin (ext 100) and a member (ext 101).
pub struct Org {
    pub id: OrgId,
    pub admin: UserId,
    pub member: UserId,
    pub directory: Harness<Directory>,
    pub now: u64,
}

pub fn ext(s: &str) -> Extension {
    Extension::parse(s).unwrap()
}

impl Org {
    pub fn new() -> Self {
        let mut org = Org {
            id: OrgId::random(),
            admin: UserId::random(),
            member: UserId::random(),
            directory: Harness::new(),
            now: 1_000,
        };
        org.system(DirectoryCommand::CreateOrganization {
            name: "Acme".into(),
            first_admin: org.admin,
            first_admin_name: "Ada".into(),
            first_admin_extension: ext("100"),
        })
        .unwrap();
        org.admin_does(DirectoryCommand::AddUser {
            user: org.member,
            name: "Max".into(),
            extension: ext("101"),
            role: Role::Member,
        })
        .unwrap();
        org
    }

    pub fn state(&self) -> &Directory {
        &self.directory.state
    }

    fn meta(&mut self, user: Option<UserId>) -> CommandMeta {
        self.now += 1;
        match user {
            // The meta claims admin on purpose: the directory must use its own record.
            Some(id) => CommandMeta::user(self.id, id, Role::Admin, self.now),
            None => CommandMeta::system(self.id, self.now),
        }
    }

    pub fn run(
        &mut self,
        issued: Issued<DirectoryCommand>,
    ) -> Result<Vec<DirectoryEvent>, DirectoryRejection> {
        self.directory.handle(&issued)
    }

    pub fn by(
        &mut self,
        user: UserId,
        command: DirectoryCommand,
    ) -> Result<Vec<DirectoryEvent>, DirectoryRejection> {
        let issued = self.meta(Some(user)).issue(command);
        self.run(issued)
    }

    pub fn admin_does(
        &mut self,
        command: DirectoryCommand,
    ) -> Result<Vec<DirectoryEvent>, DirectoryRejection> {
        self.by(self.admin, command)
    }

    pub fn member_does(
        &mut self,
        command: DirectoryCommand,
    ) -> Result<Vec<DirectoryEvent>, DirectoryRejection> {
        self.by(self.member, command)
    }

    pub fn system(
        &mut self,
        command: DirectoryCommand,
    ) -> Result<Vec<DirectoryEvent>, DirectoryRejection> {
        let issued = self.meta(None).issue(command);
        self.run(issued)
    }
}
