"""Gitaly's migration process, as a person who automates it with a plain script writes it
down: the stages of `workflows/gitaly-migration.yaml` and of its acceptance-testing child
(`workflows/acceptance-testing.yaml`), their gates, what entering a stage does, and the
decisions. No tracker I/O here: `gitlab_rollout.py` (python-gitlab) and
`github_rollout.py` (PyGithub) fetch and write, through the small interface that
`advance` and `report_entry` take.

Gates are checked cheapest first: the checklist and labels are in the issue that the list
already returned; the label history (soaks, approvals, releases since the stage began),
the merge requests and the children are fetched only when the gates before them hold,
once per issue and run. The implementation stages end when their section is ticked or a
merge request that references the issue is merged in the stage's project: the merge
requests are asked only when the section is not ticked. Opt-In and Opt-Out wait for a
minor release of `release_project` published after the stage began: the script lists a
project's releases once per run and keeps them in a dict (`Releases`), as anyone would
who has more than one migration waiting (asking per migration is the naive version, one
list per waiting migration). Metric gates (`error_rate_query`) are not written down here:
the benchmark sets no query, which makes them no gates at all, and the script refuses a
migration that has one.
"""

import argparse
import json
import pathlib
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional


@dataclass
class Stage:
    label: str
    section: Optional[str] = None  # checklist section that must be done
    soak: Optional[str] = None  # a duration, or the variable holding it
    merge_request: Optional[str] = None  # variable naming the project where a merged MR also ends it
    release: Optional[str] = None  # variable naming the project whose minor release ends it
    approval: Optional[tuple] = None  # (label, users who may add it)
    child_done: Optional[str] = None  # the child's stage label that completes it
    next: Optional[Callable[[list], str]] = None  # labels -> next stage label
    exits: dict = field(default_factory=dict)  # label -> stage label (no gates)
    on_enter: Optional[str] = None  # comment text, {variables} filled in
    child: bool = False  # entering it opens the acceptance-testing child
    close: bool = False
    remove: tuple = ()
    terminal: bool = False


def to(label):
    return lambda _labels: label


GITALY = [
    Stage("Selection", section="Selection", next=to("Migration Analysis")),
    Stage(
        "Migration Analysis",
        section="Migration Analysis",
        next=lambda labels: "Client Implementation" if "existing-rpc" in labels else "RPC Design",
        exits={"shelve": "Migration:Shelved"},
    ),
    Stage("RPC Design", section="RPC Design", merge_request="proto_project", next=to("Server Implementation")),
    Stage(
        "Server Implementation",
        section="Server Implementation",
        merge_request="server_project",
        next=to("Client Implementation"),
    ),
    Stage(
        "Client Implementation",
        section="Client Implementation",
        merge_request="client_project",
        next=to("Migration:Ready-for-Testing"),
    ),
    Stage("Migration:Ready-for-Testing", section="Ready for Testing", next=to("Acceptance Testing")),
    Stage(
        "Acceptance Testing",
        section="Acceptance Testing",
        approval=("Opt-In Approved", {"jacobvosmaer-gitlab"}),
        child_done="acceptance::complete",
        next=to("Migration:Opt-In"),
        child=True,
        on_enter="Acceptance testing of `{feature_flag}` starts: work through the acceptance-testing issue. "
        "When it is complete, update the runbook and alerts, and ask the Gitaly maintainer to review and add "
        '~"Opt-In Approved".',
    ),
    Stage(
        "Migration:Opt-In",
        section="Opt-In",
        release="release_project",
        next=to("Migration:Opt-Out"),
        on_enter="Opt-In: on-premise installations can enable the feature with `{feature_flag}=1`. "
        "shepherd moves this migration to Opt-Out once the next minor release of {release_project} is published.",
    ),
    Stage(
        "Migration:Opt-Out",
        section="Opt-Out",
        release="release_project",
        next=to("Migration:Mandatory"),
        on_enter="Opt-Out: the feature is enabled by default; it can be disabled with `{feature_flag}=0`. "
        "shepherd moves this migration to Mandatory once the next minor release of {release_project} is published.",
    ),
    Stage(
        "Migration:Mandatory",
        section="Mandatory",
        next=to("Migration:Done"),
        on_enter="Mandatory: remove the references to `{feature_flag}` from Omnibus and the Chef repo, "
        "and the flag switching code from the client application. shepherd completes this migration "
        "when the Mandatory items are ticked.",
    ),
    Stage(
        "Migration:Done",
        terminal=True,
        close=True,
        on_enter="`{grpc_service}::{grpc_method}` is migrated: `{feature_flag}` and the old route are gone.",
    ),
    Stage("Migration:Shelved", terminal=True, close=True, remove=("shelve",)),
]

TRIAL = {"trial-disabled": "acceptance::rolled-back"}
ACCEPTANCE = [
    Stage("acceptance::preparation", section="1. Preparation", next=to("acceptance::development"), exits=TRIAL),
    Stage("acceptance::development", section="2. Development Trial", next=to("acceptance::staging"), exits=TRIAL),
    Stage(
        "acceptance::staging",
        section="3. Staging Trial",
        soak="15m",
        next=to("acceptance::production-version-check"),
        exits=TRIAL,
    ),
    Stage(
        "acceptance::production-version-check",
        section="4. Production Server Version Check",
        next=to("acceptance::production-1%"),
        exits=TRIAL,
    ),
    Stage("acceptance::production-1%", section="5. Initial Impact Check", soak="15m", next=to("acceptance::production-5%"), exits=TRIAL),
    Stage("acceptance::production-5%", section="6. Low Impact Trial", soak="2h", next=to("acceptance::production-50%"), exits=TRIAL),
    Stage("acceptance::production-50%", section="7. Mid Impact Trial", soak="24h", next=to("acceptance::production-100%"), exits=TRIAL),
    Stage("acceptance::production-100%", section="8. Full Impact Trial", soak="1w", next=to("acceptance::complete"), exits=TRIAL),
    Stage(
        "acceptance::complete",
        terminal=True,
        close=True,
        on_enter="Acceptance testing of `{feature_flag}` is complete in all environments.",
    ),
    Stage(
        "acceptance::rolled-back",
        terminal=True,
        close=True,
        on_enter="The trial of `{feature_flag}` was disabled. Disable the flag everywhere with "
        "`!feature-set {feature_flag} false` and `/chatops run feature set {feature_flag} false`.",
    ),
]

WORKFLOWS = {
    "gitaly-migration": {s.label: s for s in GITALY},
    "acceptance-testing": {s.label: s for s in ACCEPTANCE},
}
# The labels each workflow's issues carry, listed together (one list, 100 a page).
TRACKING_LABELS = {
    "gitaly-migration": ["Migration", "Conversation"],
    "acceptance-testing": ["Acceptance Testing"],
}
CHILD_LABELS = ["Acceptance Testing", "acceptance::preparation"]
# The variables' defaults (`start` writes them into the marker; a marker without one
# gets it here).
DEFAULTS = {
    "gitaly-migration": {
        "gitaly_version": "vX.X.X",
        "gitlab_version": "vX.X",
        "release_project": "gitlab-org/gitlab",
        "proto_project": "gitlab-org/gitaly-proto",
        "server_project": "gitlab-org/gitaly",
        "client_project": "gitlab-org/gitlab",
        "error_rate_query": "",
        "error_rate_threshold": "0.01",
    },
    "acceptance-testing": {
        "gitaly_version": "vX.X.X",
        "gitlab_version": "vX.X",
        "error_rate_query": "",
        "error_rate_threshold": "0.01",
    },
}
# Only minor releases count: v17.3.0, v17.3.0-ee; not patches or release candidates.
MINOR_RELEASE = re.compile(r"^v\d+\.\d+\.0(-ee)?$")

MARKER = re.compile(r"<!-- shepherd:(\{.*\}) -->")


def marker(body):
    """The machine-readable line at the end of a migration's body: workflow and variables."""
    found = MARKER.findall(body or "")
    return json.loads(found[-1]) if found else None


def stage_of(workflow, labels):
    stages = WORKFLOWS[workflow]
    return next((stages[l] for l in labels if l in stages), None)


# --- checklists ---------------------------------------------------------------------

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\[([ xX~])\]\s")
FENCE = re.compile(r"^\s*(```|~~~)")


def section_done(body, section):
    """All task items under a heading containing `section` are ticked ([x], [X] or [~]),
    and there is at least one."""
    wanted = section.lower()
    headings, fenced, seen = [], False, []
    for line in (body or "").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        h = HEADING.match(line)
        if h:
            level = len(h.group(1))
            while headings and headings[-1][0] >= level:
                headings.pop()
            headings.append((level, h.group(2).lower()))
            continue
        item = ITEM.match(line)
        if item and any(wanted in text for _, text in headings):
            seen.append(item.group(1) != " ")
    return bool(seen) and all(seen)


def duration(text):
    total, digits = timedelta(), ""
    units = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
    for c in text:
        if c.isdigit():
            digits += c
        else:
            total += units[c] * int(digits)
            digits = ""
    return total


# --- deciding and moving ------------------------------------------------------------


@dataclass
class Migration:
    """One issue as the list returned it, plus what was fetched for it in this run."""

    number: int
    workflow: str
    vars: dict
    labels: list
    body: str
    created_at: datetime
    handle: object  # the client library's issue object
    events: Optional[list] = None  # [(label, added, at, user)], oldest first
    children: Optional[list] = None  # [(number, labels, open)]
    merge_requests: Optional[list] = None  # [(project, merged)]


def entered_at(m, label, fetch_events):
    if m.events is None:
        m.events = fetch_events(m)
    added = [at for (l, add, at, _) in m.events if l == label and add]
    return max(added) if added else m.created_at


def approved(m, label, users, fetch_events):
    if label not in m.labels:
        return False
    if m.events is None:
        m.events = fetch_events(m)
    last = [user for (l, add, _, user) in m.events if l == label and add]
    return bool(last) and last[-1] in users


class Releases:
    """A project's published releases, [(tag, at)], asked once per run."""

    def __init__(self, fetch):
        self.fetch = fetch
        self.known = {}

    def of(self, project):
        if project not in self.known:
            self.known[project] = self.fetch(project)
        return self.known[project]


def released_since(m, stage, releases, fetch_events):
    """A minor release of the stage's project published after the stage began."""
    since = entered_at(m, stage.label, fetch_events)
    return any(MINOR_RELEASE.match(tag) and at > since for tag, at in releases.of(m.vars[stage.release]))


def merged(m, stage, fetch_merge_requests):
    """A merge request in the stage's project that references the issue is merged."""
    if m.merge_requests is None:
        m.merge_requests = fetch_merge_requests(m)
    project = m.vars[stage.merge_request].lower()
    return any(p.lower() == project and done for p, done in m.merge_requests)


def gates_hold(m, stage, now, just_entered, tracker):
    if stage.section and not section_done(m.body, stage.section):
        if not stage.merge_request or not merged(m, stage, tracker.merge_requests):
            return False
    if stage.approval and stage.approval[0] not in m.labels:
        return False
    if stage.soak:
        if just_entered:
            return False
        need = duration(m.vars.get(stage.soak, stage.soak))
        if now - entered_at(m, stage.label, tracker.label_events) < need:
            return False
    if stage.release:
        # Entered in this run: no release can have come out since.
        if just_entered or not released_since(m, stage, tracker.releases, tracker.label_events):
            return False
    if stage.approval and not approved(m, *stage.approval, tracker.label_events):
        return False
    if stage.child_done:
        if m.children is None:
            m.children = tracker.children(m)
        newest = max(m.children, default=None)
        if newest is None or stage.child_done not in newest[1]:
            return False
    return True


def advance(m, now, tracker, child_template):
    """Moves `m` as far as its gates allow; returns (moves, children created)."""
    stages = WORKFLOWS[m.workflow]
    if m.vars.get("error_rate_query"):
        raise NotImplementedError(f"#{m.number}: metric gates are not written down in this script")
    moves = created = 0
    just_entered = False
    while moves < 8:
        stage = stage_of(m.workflow, m.labels)
        if stage is None or stage.terminal:
            break
        target = next((to for label, to in stage.exits.items() if label in m.labels), None)
        if target is None:
            if not gates_hold(m, stage, now, just_entered, tracker):
                break
            target = stage.next(m.labels)
        new = stages[target]
        text = f'Moved from ~"{stage.label}" to ~"{new.label}".'
        if new.on_enter:
            text += "\n\n" + new.on_enter.format(**m.vars)
        remove = [stage.label, *new.remove]
        m.labels = [l for l in m.labels if l not in remove] + [new.label]
        tracker.move(m, text, remove, new.label, new.close)
        moves += 1
        just_entered = True
        if new.child:
            title, body = render_child(child_template, m, "PENDING")
            number = tracker.create_child(m, title, body, CHILD_LABELS)
            created += 1
            _, body = render_child(child_template, m, str(number))
            tracker.fill_in_child(number, body)
            tracker.comment(number, 'Started the acceptance testing in ~"acceptance::preparation".')
            tracker.link_child(m, number)
    return moves, created


def render_child(template, m, own):
    """The acceptance-testing issue from its template (`{{var}}`, `{{urlencode var}}`)."""
    _, front, text = template.split("---\n", 2)
    title = re.search(r'^title:\s*"(.*)"\s*$', front, re.M).group(1)
    values = dict(m.vars)
    values["migration.ref"] = str(m.number)
    values["issue.ref"] = own

    def fill(match):
        helper, name = match.group(1), match.group(2)
        value = values[name]
        return urllib.parse.quote(value, safe="") if helper == "urlencode" else value

    pattern = re.compile(r"\{\{\s*(?:(urlencode)\s+)?([\w.]+)\s*\}\}")
    # The child's variables: the parent's, with the child's defaults filled in.
    keep = {**DEFAULTS["acceptance-testing"], **m.vars}
    mark = json.dumps(
        {"workflow": "acceptance-testing", "parent": m.number, "template": "acceptance-testing", "vars": keep},
        separators=(",", ":"),
    )
    body = pattern.sub(fill, text).rstrip()
    return pattern.sub(fill, title), f"{body}\n\n<!-- shepherd:{mark} -->\n"


def parse_time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def now():
    return datetime.now(timezone.utc)


# --- report -------------------------------------------------------------------------


def report_entry(m, at, releases):
    """Where one migration stands: stage, since when, how it got there, its gates."""
    stage = stage_of(m.workflow, m.labels)
    stages = WORKFLOWS[m.workflow]
    history = [
        {"label": l, "at": t.isoformat(), "by": u} for (l, add, t, u) in (m.events or []) if add and l in stages
    ]
    entry = {
        "ref": m.number,
        "workflow": m.workflow,
        "stage": stage.label if stage else None,
        "entered_at": entered_at(m, stage.label, lambda _m: []).isoformat() if stage else None,
        "history": history,
    }
    if stage and not stage.terminal:
        entry["checklist_done"] = bool(stage.section) and section_done(m.body, stage.section)
        if stage.soak:
            need = duration(m.vars.get(stage.soak, stage.soak))
            entry["soaked"] = at - entered_at(m, stage.label, lambda _m: []) >= need
        if stage.release and entry["checklist_done"]:
            entry["released"] = released_since(m, stage, releases, lambda _m: [])
        if stage.merge_request and m.merge_requests is not None:
            entry["merged"] = merged(m, stage, lambda _m: [])
    if m.children is not None:
        entry["children"] = [{"ref": n, "labels": labels, "open": o} for (n, labels, o) in m.children]
    return entry


def report(migrations, at, releases):
    counts = {}
    for m in migrations:
        stage = stage_of(m.workflow, m.labels)
        per = counts.setdefault(m.workflow, {})
        key = stage.label if stage else "(none)"
        per[key] = per.get(key, 0) + 1
    return {
        "generated_at": at.isoformat(),
        "stages": counts,
        "migrations": [report_entry(m, at, releases) for m in migrations],
    }


def arguments(doc, place):
    """The command line of a rollout script whose tracker takes `place` (`--repo`,
    `--project`): the command, the tracker's URL and place, the templates' folder."""
    here = pathlib.Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("command", choices=["reconcile", "report"])
    parser.add_argument("--url", required=True)
    parser.add_argument(place, required=True)
    parser.add_argument("--templates", default=str(here.parent.parent / "templates"))
    return parser.parse_args()


def run(tracker, command, templates):
    """`report`: prints the report of `tracker`'s migrations as JSON. `reconcile`: advances
    each, children first, and prints how many moves and children it made."""
    migrations = tracker.migrations()
    at = now()
    if command == "report":
        for m in migrations:
            m.events = tracker.label_events(m)
            stage = stage_of(m.workflow, m.labels)
            if stage and stage.child:
                m.children = tracker.children(m)
            if stage and stage.merge_request and not section_done(m.body, stage.section):
                m.merge_requests = tracker.merge_requests(m)
        print(json.dumps(report(migrations, at, tracker.releases), indent=1))
        return
    template = (pathlib.Path(templates) / "acceptance-testing.md.hbs").read_text()
    moves = created = 0
    # Children first, so that a parent sees what its child did in the same run.
    for m in sorted(migrations, key=lambda m: (m.workflow != "acceptance-testing", m.number)):
        a, b = advance(m, at, tracker, template)
        moves += a
        created += b
    print(json.dumps({"moves": moves, "children": created}))
