#!/usr/bin/env python3
"""Gitaly's migration process on GitHub with PyGithub, written as a competent user would
write it: plain loops, one request at a time, no cache between runs.

    GITHUB_TOKEN=… github_rollout.py reconcile --url URL --repo owner/repo
    GITHUB_TOKEN=… github_rollout.py report --url URL --repo owner/repo

`reconcile` lists the open migrations (a labels filter, 100 a page), decides each one's
gates (`gitaly_process`: the timeline for label history and for pull requests that
reference the issue, and a repository's releases, `GET /repos/{o}/{r}/releases` once per
run, only where the gates before hold), and for each move posts one comment (the move and the stage's
message) and replaces the labels in one `PATCH`; entering Acceptance Testing creates the
child issue (then fills in its own number, comments its start and adds it as a
sub-issue). It prints `{"moves": M, "children": C}`. `report` prints where every open
migration stands, from its timeline's label events (and its sub-issues, in Acceptance
Testing).

PyGithub's own pauses between requests (0.25 s) and between writes (1 s) are turned off,
so that this script, like shepherd, waits only for the server.
"""

import os

from github import Auth, Github

import gitaly_process as gp


class GitHub:
    def __init__(self, url, repo):
        self.gh = Github(
            base_url=url,
            auth=Auth.Token(os.environ["GITHUB_TOKEN"]),
            per_page=100,
            seconds_between_requests=None,
            seconds_between_writes=None,
        )
        self.repo = self.gh.get_repo(repo, lazy=True)
        self.created = {}
        self.releases = gp.Releases(self.project_releases)

    def migrations(self):
        found = {}
        for workflow, labels in gp.TRACKING_LABELS.items():
            for issue in self.repo.get_issues(state="open", labels=labels):
                mark = gp.marker(issue.body)
                if issue.pull_request or not mark or mark.get("workflow") != workflow or issue.number in found:
                    continue
                found[issue.number] = gp.Migration(
                    number=issue.number,
                    workflow=workflow,
                    vars={**gp.DEFAULTS[workflow], **mark.get("vars", {})},
                    labels=[l.name for l in issue.labels],
                    body=issue.body or "",
                    created_at=issue.created_at,
                    handle=issue,
                )
        return list(found.values())

    def label_events(self, m):
        return [
            (e.raw_data["label"]["name"], e.event == "labeled", e.created_at, e.actor.login)
            for e in m.handle.get_timeline()
            if e.event in ("labeled", "unlabeled")
        ]

    def merge_requests(self, m):
        """The pull requests that reference the issue (its timeline's cross-references from
        pull requests): [(repository, merged)]."""
        out = []
        for e in m.handle.get_timeline():
            if e.event != "cross-referenced":
                continue
            source = e.raw_data["source"]["issue"]
            pull = source.get("pull_request")
            if not pull:
                continue
            repo = source["repository"]["full_name"]
            if "merged_at" in pull:
                merged = pull["merged_at"] is not None
            else:
                merged = self.gh.get_repo(repo, lazy=True).get_pull(source["number"]).merged
            out.append((repo, merged))
        return out

    def project_releases(self, project):
        """Published releases of `project` (drafts and pre-releases left out): [(tag, at)]."""
        return [
            (r.tag_name, r.published_at)
            for r in self.gh.get_repo(project, lazy=True).get_releases()
            if not r.draft and not r.prerelease
        ]

    def children(self, m):
        return sorted((s.number, [l.name for l in s.labels], s.state == "open") for s in m.handle.get_sub_issues())

    def move(self, m, text, remove, add, close):
        m.handle.create_comment(text)
        if close:
            m.handle.edit(labels=m.labels, state="closed")
        else:
            m.handle.edit(labels=m.labels)

    def create_child(self, m, title, body, labels):
        child = self.repo.create_issue(title=title, body=body, labels=labels)
        self.created[child.number] = child
        return child.number

    def fill_in_child(self, number, body):
        self.created[number].edit(body=body)

    def comment(self, number, text):
        self.created[number].create_comment(text)

    def link_child(self, m, number):
        m.handle.add_sub_issue(self.created[number])


def main():
    args = gp.arguments(__doc__, "--repo")
    gp.run(GitHub(args.url, args.repo), args.command, args.templates)


if __name__ == "__main__":
    main()
