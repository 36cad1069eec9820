use super::{ext, Org};
use crate::aggregate::{Aggregate, Rejection};
use crate::command_meta::{Actor, CommandMeta, Role};
use crate::directory::{
    Directory, DirectoryCommand, DirectoryEvent, DirectoryRejection, UserAdded,
};
use crate::ids::{OrgId, UserId};
use crate::validation::InvalidInput;

fn create(name: &str, admin: UserId) -> DirectoryCommand {
    DirectoryCommand::CreateOrganization {
        name: name.into(),
        first_admin: admin,
        first_admin_name: "Ada".into(),
        first_admin_extension: ext("100"),
    }
}

fn add_user(user: UserId, extension: &str, role: Role) -> DirectoryCommand {
    DirectoryCommand::AddUser {
        user,
        name: "Someone".into(),
        extension: ext(extension),
        role,
    }
}

#[test]
fn the_system_creates_an_organization_whose_first_user_is_admin() {
    let (org, admin) = (OrgId::random(), UserId::random());
    let events = Directory::default()
        .decide(&CommandMeta::system(org, 5).issue(create(" Acme ", admin)))
        .unwrap();
    assert_eq!(events.len(), 2);
    assert!(
        matches!(&events[0], DirectoryEvent::OrganizationCreated(e) if e.org == org && e.name == "Acme")
    );
    assert_eq!(
        events[1],
        DirectoryEvent::UserAdded(UserAdded {
            user: admin,
            name: "Ada".into(),
            extension: ext("100"),
            role: Role::Admin,
            by: Actor::System,
            at_ms: 5,
        })
    );
}

#[test]
fn only_the_system_creates_organizations() {
    let (org, someone) = (OrgId::random(), UserId::random());
    let meta = CommandMeta::user(org, someone, Role::Admin, 5);
    assert_eq!(
        Directory::default().decide(&meta.issue(create("Acme", someone))),
        Err(DirectoryRejection::SystemOnly)
    );
}

#[test]
fn an_organization_is_created_once() {
    let mut org = Org::new();
    assert_eq!(
        org.system(create("Again", UserId::random())),
        Err(DirectoryRejection::OrganizationAlreadyCreated)
    );
}

#[test]
fn an_organization_needs_a_name() {
    let meta = CommandMeta::system(OrgId::random(), 5);
    let rejection = Directory::default()
        .decide(&meta.issue(create("  ", UserId::random())))
        .unwrap_err();
    assert_eq!(
        rejection,
        DirectoryRejection::Invalid(InvalidInput::Blank { field: "name" })
    );
    assert_eq!(rejection.code(), "blank");
}

#[test]
fn nothing_happens_before_the_organization_exists() {
    let meta = CommandMeta::system(OrgId::random(), 5);
    assert_eq!(
        Directory::default().decide(&meta.issue(add_user(UserId::random(), "200", Role::Member))),
        Err(DirectoryRejection::OrganizationNotCreated)
    );
}

#[test]
fn another_tenant_cannot_touch_the_directory() {
    let org = Org::new();
    let meta = CommandMeta::system(OrgId::random(), 5);
    assert_eq!(
        org.state()
            .decide(&meta.issue(add_user(UserId::random(), "200", Role::Member))),
        Err(DirectoryRejection::WrongOrganization)
    );
}

#[test]
fn a_stranger_cannot_act() {
    let mut org = Org::new();
    assert_eq!(
        org.by(
            UserId::random(),
            add_user(UserId::random(), "200", Role::Member)
        ),
        Err(DirectoryRejection::UnknownActor)
    );
}

#[test]
fn an_admin_adds_users() {
    let mut org = Org::new();
    let user = UserId::random();
    org.admin_does(add_user(user, "200", Role::Member)).unwrap();
    let added = org.state().user(&user).unwrap();
    assert_eq!(
        (added.extension.as_str(), added.role),
        ("200", Role::Member)
    );
    assert!(!added.settings.text_messages_to_desk_phone);
    // The System has admin powers too (provisioning).
    org.system(add_user(UserId::random(), "201", Role::Admin))
        .unwrap();
}

#[test]
fn a_member_cannot_add_users_even_claiming_to_be_admin() {
    let mut org = Org::new();
    let rejection = org
        .member_does(add_user(UserId::random(), "200", Role::Member))
        .unwrap_err();
    assert_eq!(rejection, DirectoryRejection::AdminOnly);
    assert_eq!(rejection.code(), "admin_only");
}

#[test]
fn extensions_are_unique_in_the_organization() {
    let mut org = Org::new();
    let holder = org.member;
    assert_eq!(
        org.admin_does(add_user(UserId::random(), "101", Role::Member)),
        Err(DirectoryRejection::ExtensionTaken {
            extension: ext("101"),
            by: holder
        })
    );
    assert_eq!(
        org.state().user_by_extension(&ext("101")).unwrap().id,
        holder
    );
}

#[test]
fn a_user_is_added_once() {
    let mut org = Org::new();
    let member = org.member;
    assert_eq!(
        org.admin_does(add_user(member, "300", Role::Member)),
        Err(DirectoryRejection::UserAlreadyExists { user: member })
    );
}

#[test]
fn user_names_are_bounded() {
    let mut org = Org::new();
    let rejection = org
        .admin_does(DirectoryCommand::AddUser {
            user: UserId::random(),
            name: "x".repeat(201),
            extension: ext("300"),
            role: Role::Member,
        })
        .unwrap_err();
    assert_eq!(rejection.code(), "too_long");
}

#[test]
fn an_admin_changes_roles() {
    let mut org = Org::new();
    let member = org.member;
    org.admin_does(DirectoryCommand::ChangeRole {
        user: member,
        role: Role::Admin,
    })
    .unwrap();
    assert_eq!(org.state().role_of(&member), Some(Role::Admin));
    assert_eq!(org.state().admin_count(), 2);
    // With two admins, one may step down.
    let admin = org.admin;
    org.by(
        member,
        DirectoryCommand::ChangeRole {
            user: admin,
            role: Role::Member,
        },
    )
    .unwrap();
    assert_eq!(org.state().role_of(&admin), Some(Role::Member));
}

#[test]
fn a_member_cannot_change_roles() {
    let mut org = Org::new();
    let member = org.member;
    assert_eq!(
        org.member_does(DirectoryCommand::ChangeRole {
            user: member,
            role: Role::Admin
        }),
        Err(DirectoryRejection::AdminOnly)
    );
}

#[test]
fn the_last_admin_cannot_be_demoted() {
    let mut org = Org::new();
    let admin = org.admin;
    let rejection = org
        .admin_does(DirectoryCommand::ChangeRole {
            user: admin,
            role: Role::Member,
        })
        .unwrap_err();
    assert_eq!(rejection, DirectoryRejection::LastAdmin);
    assert_eq!(rejection.code(), "last_admin");
}

#[test]
fn setting_the_role_a_user_has_writes_nothing() {
    let mut org = Org::new();
    let member = org.member;
    assert_eq!(
        org.admin_does(DirectoryCommand::ChangeRole {
            user: member,
            role: Role::Member
        }),
        Ok(vec![])
    );
}

#[test]
fn roles_of_unknown_users_cannot_change() {
    let mut org = Org::new();
    let stranger = UserId::random();
    assert_eq!(
        org.admin_does(DirectoryCommand::ChangeRole {
            user: stranger,
            role: Role::Admin
        }),
        Err(DirectoryRejection::UnknownUser { user: stranger })
    );
}

#[test]
fn a_user_sets_their_own_desk_phone_texting() {
    let mut org = Org::new();
    let member = org.member;
    let on = DirectoryCommand::SetTextMessagesToDeskPhone {
        user: member,
        enabled: true,
    };
    assert_eq!(org.member_does(on.clone()).unwrap().len(), 1);
    assert!(
        org.state()
            .user(&member)
            .unwrap()
            .settings
            .text_messages_to_desk_phone
    );
    assert_eq!(org.member_does(on), Ok(vec![]), "already on");
}

#[test]
fn a_member_cannot_change_someone_elses_settings_but_an_admin_can() {
    let mut org = Org::new();
    let (admin, member) = (org.admin, org.member);
    assert_eq!(
        org.member_does(DirectoryCommand::SetTextMessagesToDeskPhone {
            user: admin,
            enabled: true
        }),
        Err(DirectoryRejection::AdminOnly)
    );
    org.admin_does(DirectoryCommand::SetTextMessagesToDeskPhone {
        user: member,
        enabled: true,
    })
    .unwrap();
    assert!(
        org.state()
            .user(&member)
            .unwrap()
            .settings
            .text_messages_to_desk_phone
    );
}
