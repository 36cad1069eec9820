//! `schemas/` holds the JSON Schema of every version of every event type, and the code
//! agrees with it: a type that changes without a new version, a past version's file that
//! disappears or changes, or a file the code does not know about fails this test.
//!
//! `UPDATE_SCHEMAS=1 cargo test -p domain --test schemas` writes the files of current
//! versions that are missing or changed (never those of past versions, but for a type that
//! has no file at all yet: a record stored before it was a domain event arrives with its
//! past versions).

mod support;

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use domain::conversation::{CallMedia, ConversationKind, DeliveryStatus, SystemNote};
use domain::directory::{ContactOwner, Routing};
use domain::queue::{CloseReason, IdleTimeoutAction, TimeoutKind, WaitTimeoutAction};
use domain::schema::{all_event_schemas, event_schema};
use domain::{Actor, Role};
use support::{samples, Params};

fn schemas_dir() -> PathBuf {
    // `cargo test` names the package's directory when it runs the test; the path baked in
    // at compile time may be another checkout's (a target directory shared between clones).
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(
            || env!("CARGO_MANIFEST_DIR").into(),
            std::path::PathBuf::from,
        )
        .join("../../schemas")
}

/// The file's text: pretty JSON and a trailing newline.
fn render(schema: &schemars::Schema) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a schema is JSON");
    text.push('\n');
    text
}

/// The schema without its documentation (`title`, `description`), which may change
/// without changing what is stored.
fn without_docs(schema: &Value) -> Value {
    /// Keywords whose value maps names to subschemas: their keys are names, not keywords.
    const NAMED: [&str; 4] = [
        "properties",
        "$defs",
        "patternProperties",
        "dependentSchemas",
    ];
    fn schema_node(value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .filter(|(key, _)| !matches!(key.as_str(), "title" | "description"))
                    .map(|(key, child)| {
                        let child = match child {
                            Value::Object(named) if NAMED.contains(&key.as_str()) => Value::Object(
                                named
                                    .iter()
                                    .map(|(name, sub)| (name.clone(), schema_node(sub)))
                                    .collect(),
                            ),
                            other => schema_node(other),
                        };
                        (key.clone(), child)
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(schema_node).collect()),
            other => other.clone(),
        }
    }
    schema_node(schema)
}

fn docs_only_differ(committed: &str, generated: &str) -> bool {
    match (
        serde_json::from_str::<Value>(committed),
        serde_json::from_str::<Value>(generated),
    ) {
        (Ok(committed), Ok(generated)) => without_docs(&committed) == without_docs(&generated),
        _ => false,
    }
}

/// `<EventType>.v<N>.json` → (event type, N).
fn parse_file_name(name: &str) -> Option<(&str, u16)> {
    let stem = name.strip_suffix(".json")?;
    let (event_type, digits) = stem.rsplit_once(".v")?;
    let version: u16 = digits.parse().ok()?;
    // No leading zeros or signs: one spelling per version.
    (!event_type.is_empty() && version.to_string() == digits).then_some((event_type, version))
}

/// Compares `dir` with the code; returns what is wrong. With `update`, writes the files
/// of current versions that are missing or changed, the files of every version of a type
/// that has none yet (a record that was stored before it was a domain event arrives with
/// the versions it was stored in), and refreshes documentation-only changes of past
/// versions.
fn check_schemas(dir: &Path, update: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let mut known = BTreeSet::new();
    let write = |path: &Path, text: &str| {
        fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        eprintln!("UPDATE_SCHEMAS: wrote {}", path.display());
    };
    for schema in all_event_schemas() {
        // A type new to `schemas/`: none of its versions has a file yet.
        let new_type = !schema
            .known_versions()
            .any(|v| dir.join(schema.file_name(v)).exists());
        for version in schema.versions {
            let file = schema.file_name(version.version);
            known.insert(file.clone());
            let path = dir.join(&file);
            let generated = render(&(version.json_schema)());
            let committed = fs::read_to_string(&path).ok();
            let (event_type, v) = (schema.event_type, version.version);
            let current = v == schema.current_version;
            match committed {
                Some(committed) if committed == generated => {}
                None if (current || new_type) && update => write(&path, &generated),
                None if current => problems.push(format!(
                    "schemas/{file} is missing: run UPDATE_SCHEMAS=1 cargo test -p domain \
                     --test schemas and commit it"
                )),
                None => problems.push(format!(
                    "schemas/{file} is missing: {event_type} v{v} is a past version and its \
                     file is never deleted; restore it"
                )),
                Some(_) if current && update => write(&path, &generated),
                Some(committed) if docs_only_differ(&committed, &generated) => {
                    if update {
                        write(&path, &generated);
                    } else {
                        problems.push(format!(
                            "schemas/{file}: only the documentation changed; run \
                             UPDATE_SCHEMAS=1 cargo test -p domain --test schemas"
                        ));
                    }
                }
                Some(_) if current => problems.push(format!(
                    "{event_type} changed without a new schema version: bump its version, add \
                     a legacy struct + upcaster, run UPDATE_SCHEMAS=1 (schemas/{file} no \
                     longer matches the code)"
                )),
                Some(_) => problems.push(format!(
                    "{event_type} v{v} is a past version and never changes, but its legacy \
                     struct (or a type nested in it) no longer matches schemas/{file}: restore \
                     it, keeping a frozen copy of any nested type that changed"
                )),
            }
        }
    }
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let name = entry.expect("readable directory").file_name();
        let name = name.to_string_lossy();
        if name == "README.md" || known.contains(name.as_ref()) {
            continue;
        }
        problems.push(match parse_file_name(&name) {
            Some((event_type, version)) => match event_schema(event_type) {
                Some(_) => {
                    format!("schemas/{name}: the code knows no version {version} of {event_type}")
                }
                None => format!("schemas/{name}: the code knows no event type {event_type}"),
            },
            None => format!("schemas/{name} is not a <EventType>.v<N>.json file"),
        });
    }
    problems
}

#[test]
fn schema_files_match_the_code() {
    let update = std::env::var("UPDATE_SCHEMAS").is_ok_and(|v| v == "1");
    let problems = check_schemas(&schemas_dir(), update);
    assert!(
        problems.is_empty(),
        "schemas/ does not match the event types:\n- {}",
        problems.join("\n- ")
    );
}

/// A copy of `schemas/` to break on purpose.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("domain-schemas-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for entry in fs::read_dir(schemas_dir()).unwrap() {
            let entry = entry.unwrap();
            fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        Self(dir)
    }

    fn edit(&self, file: &str, change: impl FnOnce(&mut Value)) {
        let path = self.0.join(file);
        let mut value: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        change(&mut value);
        fs::write(&path, serde_json::to_string_pretty(&value).unwrap() + "\n").unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_changed_current_type_fails_with_the_bump_message() {
    let scratch = Scratch::new("changed");
    scratch.edit("DeliveryUpdated.v2.json", |schema| {
        schema["properties"]["at_ms"]["format"] = "uint32".into();
    });
    let problems = check_schemas(&scratch.0, false);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with(
            "DeliveryUpdated changed without a new schema version: bump its version, add a \
             legacy struct + upcaster, run UPDATE_SCHEMAS=1"
        ),
        "{problems:?}"
    );
    // UPDATE_SCHEMAS=1 rewrites the current file, and then all is well.
    assert!(check_schemas(&scratch.0, true).is_empty());
    assert!(check_schemas(&scratch.0, false).is_empty());
}

#[test]
fn a_changed_or_missing_past_version_fails_even_when_updating() {
    let scratch = Scratch::new("past");
    scratch.edit("DeliveryUpdated.v1.json", |schema| {
        schema["required"].as_array_mut().unwrap().reverse();
    });
    let problems = check_schemas(&scratch.0, true);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("DeliveryUpdated v1 is a past version and never changes"),
        "{problems:?}"
    );

    fs::remove_file(scratch.0.join("DeliveryUpdated.v1.json")).unwrap();
    let problems = check_schemas(&scratch.0, true);
    assert_eq!(
        problems,
        [
            "schemas/DeliveryUpdated.v1.json is missing: DeliveryUpdated v1 is a past version \
          and its file is never deleted; restore it"
        ]
    );
}

#[test]
fn a_missing_current_file_is_written_only_when_updating() {
    let scratch = Scratch::new("missing");
    let path = scratch.0.join("SmsRequested.v1.json");
    let original = fs::read_to_string(&path).unwrap();
    fs::remove_file(&path).unwrap();
    let problems = check_schemas(&scratch.0, false);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("schemas/SmsRequested.v1.json is missing"));
    assert!(!path.exists());
    assert!(check_schemas(&scratch.0, true).is_empty());
    assert_eq!(fs::read_to_string(&path).unwrap(), original);
}

#[test]
fn the_past_versions_of_a_type_new_to_the_directory_are_written_only_with_it() {
    // SessionStarted arrived with version 1 (the form it was stored in before it was a
    // domain event) and version 2.
    let scratch = Scratch::new("new-type");
    let (v1, v2) = (
        scratch.0.join("SessionStarted.v1.json"),
        scratch.0.join("SessionStarted.v2.json"),
    );
    let original = fs::read_to_string(&v1).unwrap();
    fs::remove_file(&v1).unwrap();
    fs::remove_file(&v2).unwrap();
    assert_eq!(check_schemas(&scratch.0, false).len(), 2);
    assert!(check_schemas(&scratch.0, true).is_empty());
    assert_eq!(fs::read_to_string(&v1).unwrap(), original);
    // Once the type has files, a missing past version is never written again.
    fs::remove_file(&v1).unwrap();
    let problems = check_schemas(&scratch.0, true);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("is a past version"), "{problems:?}");
    assert!(!v1.exists());
}

#[test]
fn documentation_changes_are_told_apart() {
    let scratch = Scratch::new("docs");
    scratch.edit("DeliveryUpdated.v2.json", |schema| {
        schema["properties"]["error_code"]["description"] = "Reworded.".into();
    });
    scratch.edit("DeliveryUpdated.v1.json", |schema| {
        schema["description"] = "Reworded too.".into();
    });
    let problems = check_schemas(&scratch.0, false);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems
        .iter()
        .all(|p| p.contains("only the documentation changed")));
    assert!(check_schemas(&scratch.0, true).is_empty());
}

#[test]
fn files_the_code_does_not_know_fail() {
    let scratch = Scratch::new("unknown");
    fs::write(scratch.0.join("DeliveryUpdated.v3.json"), "{}\n").unwrap();
    fs::write(scratch.0.join("MessageTeleported.v1.json"), "{}\n").unwrap();
    fs::write(scratch.0.join("notes.txt"), "").unwrap();
    let mut problems = check_schemas(&scratch.0, true);
    problems.sort();
    assert_eq!(
        problems,
        [
            "schemas/DeliveryUpdated.v3.json: the code knows no version 3 of DeliveryUpdated",
            "schemas/MessageTeleported.v1.json: the code knows no event type MessageTeleported",
            "schemas/notes.txt is not a <EventType>.v<N>.json file",
        ]
    );
}

#[test]
fn file_names_parse() {
    assert_eq!(
        parse_file_name("DeliveryUpdated.v2.json"),
        Some(("DeliveryUpdated", 2))
    );
    assert_eq!(parse_file_name("DeliveryUpdated.v02.json"), None);
    assert_eq!(parse_file_name("DeliveryUpdated.json"), None);
    assert_eq!(parse_file_name(".v1.json"), None);
}

/// The top-level keys of a JSON object, in the order they are written.
struct KeyOrder(Vec<String>);

impl<'de> serde::Deserialize<'de> for KeyOrder {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = KeyOrder;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyOrder, A::Error> {
                let mut keys = Vec::new();
                while let Some((key, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                    keys.push(key);
                }
                Ok(KeyOrder(keys))
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

/// bincode writes a struct's fields in declaration order, with no names: the schema must
/// pin that order, or moving a field would go unnoticed. It does so in `required`, which
/// lists every field (an `Option` included: serde always writes it) in serde's order.
#[test]
fn the_schema_of_a_current_version_lists_every_field_in_stored_order() {
    let checked = samples(&Params::fixed()).json_payloads();
    assert_eq!(checked.len(), all_event_schemas().count());
    for (event_type, json) in checked {
        let schema = event_schema(event_type).unwrap();
        let current = schema.versions.last().unwrap();
        let generated = serde_json::to_value((current.json_schema)()).unwrap();
        let required: Vec<&str> = generated["required"]
            .as_array()
            .unwrap_or_else(|| panic!("{event_type}: no required fields"))
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let KeyOrder(written) = serde_json::from_str(&json).unwrap();
        assert_eq!(required, written, "{event_type}");
        let properties: BTreeSet<&str> = generated["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            properties,
            required.iter().copied().collect::<BTreeSet<_>>(),
            "{event_type}: every field is required"
        );
    }
}

#[test]
fn the_new_fields_of_delivery_updated_v2_are_in_its_schema_only() {
    let dir = schemas_dir();
    let v1: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("DeliveryUpdated.v1.json")).unwrap())
            .unwrap();
    let v2: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("DeliveryUpdated.v2.json")).unwrap())
            .unwrap();
    assert_eq!(v1["title"], "DeliveryUpdated");
    assert_eq!(v2["title"], "DeliveryUpdated");
    assert_eq!(
        v1["required"],
        serde_json::json!(["message_id", "to", "status", "at_ms"])
    );
    assert_eq!(
        v2["required"],
        serde_json::json!([
            "message_id",
            "to",
            "status",
            "carrier_message_id",
            "error_code",
            "at_ms"
        ])
    );
    assert_eq!(
        v2["properties"]["carrier_message_id"]["type"],
        serde_json::json!(["string", "null"])
    );
}

/// Captures the variant names serde's derived `Deserialize` of an enum declares, in
/// declaration order (which is the position bincode stores).
struct VariantNames(Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for &mut VariantNames {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not an enum"))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = Some(variants);
        Err(serde::de::Error::custom("captured"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

fn variants_of<T: serde::de::DeserializeOwned>() -> Vec<&'static str> {
    let mut names = VariantNames(None);
    let _ = T::deserialize(&mut names);
    names.0.expect("an enum").to_vec()
}

/// The enums nested in event payloads, with their variants in stored order. The JSON
/// Schemas name every variant but, for enums mixing plain unit variants with others, not
/// in declaration order; bincode stores a variant by its position, so the order is pinned
/// here.
fn pinned_enums() -> Vec<(&'static str, Vec<&'static str>, &'static [&'static str])> {
    vec![
        (
            "DeliveryStatus",
            variants_of::<DeliveryStatus>(),
            &[
                "Requested",
                "Queued",
                "Sent",
                "Delivered",
                "Failed",
                "Undelivered",
            ],
        ),
        (
            "SystemNote",
            variants_of::<SystemNote>(),
            &[
                "Queued",
                "ClaimedBy",
                "TransferredTo",
                "Released",
                "Closed",
                "TimedOut",
            ],
        ),
        (
            "Text",
            variants_of::<domain::Text>(),
            &["Plain", "Sealed", "Erased"],
        ),
        (
            "ConversationKind",
            variants_of::<ConversationKind>(),
            &["External", "Direct", "Channel", "Group"],
        ),
        ("Actor", variants_of::<Actor>(), &["User", "System"]),
        ("Role", variants_of::<Role>(), &["Admin", "Member"]),
        ("CallMedia", variants_of::<CallMedia>(), &["Audio", "Video"]),
        (
            "CloseReason",
            variants_of::<CloseReason>(),
            &["ByAgent", "WaitTimeout", "IdleTimeout", "Overflowed"],
        ),
        (
            "TimeoutKind",
            variants_of::<TimeoutKind>(),
            &["Wait", "Idle"],
        ),
        (
            "WaitTimeoutAction",
            variants_of::<WaitTimeoutAction>(),
            &[
                "Close",
                "CloseWithReply",
                "OverflowToQueue",
                "OverflowToInbox",
            ],
        ),
        (
            "IdleTimeoutAction",
            variants_of::<IdleTimeoutAction>(),
            &["ReturnToQueue", "Close"],
        ),
        (
            "ContactOwner",
            variants_of::<ContactOwner>(),
            &["Organization", "User"],
        ),
        (
            "Routing",
            variants_of::<Routing>(),
            &["User", "Inbox", "Queue"],
        ),
        (
            "SmsOrigin",
            variants_of::<domain::outbox::SmsOrigin>(),
            &["Message", "HelpReply"],
        ),
    ]
}

#[test]
fn nested_enums_keep_their_variant_positions() {
    let mut moved = Vec::new();
    for (name, declared, stored) in pinned_enums() {
        if declared != stored {
            moved.push(format!(
                "{name}: declared {declared:?}, stored as {stored:?}"
            ));
        }
    }
    assert!(
        moved.is_empty(),
        "bincode stores an enum variant by its position, so moving, removing or inserting \
         one changes every event type that holds the enum (new variants go at the end, and \
         even then those event types need a new schema version):\n{}",
        moved.join("\n")
    );
}

#[test]
fn every_enum_in_a_schema_has_its_variant_positions_pinned() {
    fn is_enum(schema: &Value) -> bool {
        schema.get("oneOf").is_some() || schema.get("enum").is_some()
    }
    let mut in_schemas = BTreeSet::new();
    for schema in all_event_schemas() {
        for version in schema.versions {
            let generated = serde_json::to_value((version.json_schema)()).unwrap();
            assert!(!is_enum(&generated), "payloads are structs");
            if let Some(defs) = generated.get("$defs").and_then(Value::as_object) {
                in_schemas.extend(
                    defs.iter()
                        .filter(|(_, def)| is_enum(def))
                        .map(|(name, _)| name.clone()),
                );
            }
        }
    }
    let pinned: BTreeSet<String> = pinned_enums()
        .into_iter()
        .map(|(name, _, _)| name.to_owned())
        .collect();
    assert_eq!(
        in_schemas, pinned,
        "pin the variant order of every enum nested in a payload in pinned_enums()"
    );
}
