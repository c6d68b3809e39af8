//! The one error classifier of the scripts (`Get-CalpermErrorKind` in templates/_retry.ps1.hbs),
//! as rendered, in the real pwsh: every known Exchange error text (exchange.md §2.2/§2.3,
//! field-notes §2–§4), with its exception type (V3 message, CategoryInfo of a remote session, or
//! only the error id) and without it (live '||<text>', bare text).

use crate::common;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

const STORE: &str = "Microsoft.Exchange.Management.StoreTasks.";
const TASKS: &str = "Microsoft.Exchange.Configuration.Tasks.";

/// (id, text, exception type, LocId, kind with the type, kind from the text alone)
type Case = (
    &'static str,
    &'static str,
    Option<String>,
    &'static str,
    &'static str,
    &'static str,
);

fn cases() -> Vec<Case> {
    let store = |t: &str| Some(format!("{STORE}{t}"));
    let tasks = |t: &str| Some(format!("{TASKS}{t}"));
    vec![
        // exchange.md §2.2
        (
            "entry-exists",
            "An existing permission entry was found for user: Monitor.",
            store("UserAlreadyExistsInPermissionEntryException"),
            "",
            "entry-exists",
            "entry-exists",
        ),
        (
            "no-entry",
            "There is no existing permission entry found for user: Monitor.",
            store("UserNotFoundInPermissionEntryException"),
            "",
            "no-entry",
            "no-entry",
        ),
        (
            "folder-not-found",
            "The operation couldn't be performed because 'he@COMPANY.Com:\\calendar' couldn't be found.",
            tasks("ManagementObjectNotFoundException"),
            "Ex43C0AC",
            "not-found",
            "not-found",
        ),
        (
            "mailbox-not-found-exo",
            "The specified mailbox Identity:\"alex@contoso.com\" doesn't exist.",
            tasks("ManagementObjectNotFoundException"),
            "Ex41BAF5",
            "not-found",
            "not-found",
        ),
        (
            "mailbox-not-found-old",
            "The specified mailbox \"alex@contoso.com\" doesn't exist.",
            tasks("ManagementObjectNotFoundException"),
            "Ex41BAF5",
            "not-found",
            "not-found",
        ),
        (
            "mailbox-not-found-rps",
            "The specified mailbox Identity: 'user1@company.com' does not exist.",
            tasks("ManagementObjectNotFoundException"),
            "",
            "not-found",
            "not-found",
        ),
        (
            "ambiguous",
            "The operation couldn't be performed because 'Jordan Lee' matches multiple entries.",
            tasks("ManagementObjectAmbiguousException"),
            "",
            "ambiguous",
            "ambiguous",
        ),
        (
            "not-unique",
            "The specified mailbox \"Jordan Lee\"  isn't unique.",
            tasks("ManagementObjectAmbiguousException"),
            "",
            "ambiguous",
            "ambiguous",
        ),
        (
            "object-not-found-on-dc",
            "The operation couldn't be performed because object '$USER' couldn't be found on 'AD1.DOMAIN.LOCAL'.",
            tasks("ManagementObjectNotFoundException"),
            "",
            "not-found",
            "not-found",
        ),
        (
            "read-from-dc",
            "Recipient \"alex\" couldn't be read from domain controller \"DC1\".",
            tasks("ManagementObjectNotFoundException"),
            "Ex4215D1",
            "not-found",
            "not-found",
        ),
        (
            "invalid-external-user",
            "The user \"ghost@contoso.com\" is either not valid SMTP address, or there is no matching information.",
            store("InvalidExternalUserIdException"),
            "",
            "other",
            "other",
        ),
        (
            "invalid-internal-user",
            "The user \"All Staff\" was found in Active Directory but isn't valid to use for permissions. Try an SMTP address instead.",
            store("InvalidInternalUserIdException"),
            "",
            "other",
            "other",
        ),
        (
            "bad-access-rights",
            "The value \"Reader\" isn't a valid mailbox folder permission or role. The valid permissions include \"ReadItems, CreateItems, EditOwnedItems, DeleteOwnedItems, EditAllItems, DeleteAllItems, CreateSubfolders, FolderOwner, FolderContact, FolderVisible\"; The valid roles include \"Owner, PublishingEditor, Editor, PublishingAuthor, Author, NonEditingAuthor, Reviewer, Contributor, AvailabilityOnly, LimitedDetails\".",
            Some("System.ArgumentOutOfRangeException".into()),
            "Ex3B7F21",
            "other",
            "other",
        ),
        (
            "role-and-rights",
            "The access rights of a mailbox folder can't contain both specific permissions and precanned roles.",
            None,
            "",
            "other",
            "other",
        ),
        (
            "enum-out-of-range",
            "Specified argument was out of the range of valid values.\r\nParameter name: memberRights",
            Some("Microsoft.Exchange.Data.EnumOutOfRangeException".into()),
            "",
            "other",
            "other",
        ),
        (
            "cannot-remove-special",
            "Cannot remove default or anonymous permissions.",
            store("CannotRemoveSpecialUserException"),
            "",
            "other",
            "other",
        ),
        (
            "corrupt-permission-table",
            "The security principal specified is already on the permission set.",
            Some("Microsoft.Exchange.Data.Storage.CorruptDataException".into()),
            "",
            "other",
            "other",
        ),
        (
            "sharing-policy",
            "The Sharing policy doesn't allow you to grant certain permissions to users on ContactsFolder folder",
            None,
            "",
            "other",
            "other",
        ),
        (
            "folder-identity-format",
            "The mailbox folder identity \"alex@contoso.com:\" isn't in the correct format. The correct format should look like this: \"<MailboxIdentity>:<FolderPath>\". ",
            None,
            "",
            "other",
            "other",
        ),
        (
            "positional",
            "A positional parameter cannot be found that accepts argument 'Receive'",
            Some("System.Management.Automation.ParameterBindingException".into()),
            "",
            "other",
            "other",
        ),
        (
            "migration-transient",
            "",
            Some("Microsoft.Exchange.Data.Storage.Management.MigrationTransientException".into()),
            "",
            "transient",
            "other",
        ),
        (
            "rest-500",
            "Error while querying REST service. HttpStatusCode=500 ErrorMessage={\"error\":{\"code\":\"InternalServerError\",\"message\":\"An internal server error occurred.\"}}",
            None,
            "",
            "transient",
            "transient",
        ),
        // exchange.md §2.3 and the simulation's own (made-up) throttling and transient texts
        (
            "micro-delay",
            "Micro delay applied. Actual delayed: 21956 msecs, Enforced: True, Capped delay: 21956 msecs, Required: False",
            None,
            "",
            "throttled",
            "throttled",
        ),
        (
            "rps-connection-cap",
            "Processing data from remote server outlook.office365.com failed with the following error message: [AuthZRequestId=8feccdea-493c-4c12-85dd-d185232cc0be][FailureCategory=AuthZ-AuthorizationException] Fail to create a runspace because you have exceeded the maximum number of connections allowed : 3",
            None,
            "",
            "throttled",
            "throttled",
        ),
        (
            "sim-throttled",
            "The server is busy. Try again later. (HttpStatusCode=429 TooManyRequests)",
            Some("Microsoft.Exchange.Data.Storage.ServerBusyException".into()),
            "",
            "throttled",
            "throttled",
        ),
        (
            "sim-transient",
            "The request failed with a transient error. (HttpStatusCode=503 ServiceUnavailable)",
            Some("Microsoft.Exchange.Data.Storage.TransientException".into()),
            "",
            "transient",
            "transient",
        ),
        // field-notes §2 (live, type-less), §3 (tenant concurrency), §4 (remote pipelines)
        (
            "live-typeless-not-found",
            "The operation couldn't be performed because object 'no-reply@xxx.com' couldn't be found on 'xxx.xxx.PROD.OUTLOOK.COM'.",
            None,
            "",
            "not-found",
            "not-found",
        ),
        (
            "tenant-concurrency",
            "You have reached the maximum number of concurrent requests per tenant. Please wait and try again.",
            None,
            "",
            "throttled",
            "throttled",
        ),
        (
            "concurrent-pipelines",
            "Pipelines cannot be executed concurrently.",
            Some("System.Management.Automation.PSInvalidOperationException".into()),
            "",
            "other",
            "other",
        ),
        // access denied (no exact Exchange text in the reference; the usual wordings)
        (
            "access-denied",
            "Access is denied.",
            Some("System.UnauthorizedAccessException".into()),
            "",
            "access-denied",
            "access-denied",
        ),
        (
            "insufficient-privileges",
            "Insufficient privileges to complete the operation.",
            None,
            "",
            "access-denied",
            "access-denied",
        ),
    ]
}

#[test]
fn every_known_exchange_error_is_classified_with_and_without_its_type() {
    let Some(pwsh) = common::pwsh() else { return };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("grant.ps1");
    let rendered = common::calperm()
        .args(["render", "grant", "--monitor", "monitor@contoso.com", "-o"])
        .arg(&script)
        .output()
        .unwrap();
    assert!(rendered.status.success(), "{rendered:?}");
    let cases = cases();
    let list: Vec<Value> = cases
        .iter()
        .map(
            |(id, text, ty, loc, _, _)| json!({ "id": id, "text": text, "type": ty, "locId": loc }),
        )
        .collect();
    let cases_file = dir.path().join("cases.json");
    std::fs::write(&cases_file, serde_json::to_string(&list).unwrap()).unwrap();
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ps/Classify-Errors.ps1");
    let out = std::process::Command::new(pwsh)
        .args(["-NoLogo", "-NoProfile", "-NonInteractive", "-File"])
        .arg(&harness)
        .arg("-Script")
        .arg(&script)
        .arg("-Cases")
        .arg(&cases_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: BTreeMap<(String, String), String> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        got.insert(
            (
                v["id"].as_str().unwrap().into(),
                v["shape"].as_str().unwrap().into(),
            ),
            v["kind"].as_str().unwrap().into(),
        );
    }
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (id, _, ty, _, typed, untyped) in &cases {
        let mut shapes = vec![("typeless", *untyped), ("text", *untyped)];
        if ty.is_some() {
            shapes.extend([("v3", *typed), ("remote", *typed), ("error-id", *typed)]);
        }
        for (shape, want) in shapes {
            checked += 1;
            match got.get(&(id.to_string(), shape.to_string())) {
                Some(kind) if kind == want => {}
                other => wrong.push(format!("{id} ({shape}): {other:?}, want {want}")),
            }
        }
    }
    assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
    assert!(checked > 100, "{checked} shapes checked");
}
