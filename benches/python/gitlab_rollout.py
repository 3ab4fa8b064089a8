#!/usr/bin/env python3
"""Gitaly's migration process on GitLab with python-gitlab, written as a competent user
would write it: plain loops, one request at a time, no cache between runs.

    GITLAB_TOKEN=… gitlab_rollout.py reconcile --url URL --project group/project
    GITLAB_TOKEN=… gitlab_rollout.py report --url URL --project group/project

`reconcile` lists the open migrations (a labels filter, 100 a page), decides each one's
gates (`gitaly_process`: the label history, `related_merge_requests` and a project's
releases, `GET /projects/:id/releases` once per run, only where the gates before hold), and for each move posts one comment (the move and the stage's
message) and sets the labels in one `PUT`; entering Acceptance Testing creates the child
issue (then fills in its own number, comments its start and links it). It prints
`{"moves": M, "children": C}`. `report` prints where every open migration stands, from
its label history (and its children, in Acceptance Testing).
"""

import os

import gitlab

import gitaly_process as gp


class GitLab:
    def __init__(self, url, project):
        self.gl = gitlab.Gitlab(url, private_token=os.environ["GITLAB_TOKEN"], per_page=100)
        self.project = self.gl.projects.get(project, lazy=True)
        self.path = project
        self.created = {}
        self.releases = gp.Releases(self.project_releases)

    def migrations(self):
        found = {}
        for workflow, labels in gp.TRACKING_LABELS.items():
            for issue in self.project.issues.list(state="opened", labels=labels, iterator=True):
                mark = gp.marker(issue.description)
                if not mark or mark.get("workflow") != workflow or issue.iid in found:
                    continue
                found[issue.iid] = gp.Migration(
                    number=issue.iid,
                    workflow=workflow,
                    vars={**gp.DEFAULTS[workflow], **mark.get("vars", {})},
                    labels=list(issue.labels),
                    body=issue.description or "",
                    created_at=gp.parse_time(issue.created_at),
                    handle=issue,
                )
        return list(found.values())

    def label_events(self, m):
        return [
            (e.label["name"], e.action == "add", gp.parse_time(e.created_at), e.user["username"])
            for e in m.handle.resourcelabelevents.list(iterator=True)
            if e.label
        ]

    def merge_requests(self, m):
        """The merge requests that reference the issue (GitLab lists the closing ones among
        them): [(project, merged)]."""
        return [
            (mr["references"]["full"].rsplit("!", 1)[0], mr["state"] == "merged")
            for mr in m.handle.related_merge_requests(get_all=True)
        ]

    def project_releases(self, project):
        """Published releases of `project` (upcoming ones left out): [(tag, at)]."""
        return [
            (r.tag_name, gp.parse_time(r.released_at))
            for r in self.gl.projects.get(project, lazy=True).releases.list(iterator=True)
            if not r.upcoming_release
        ]

    def children(self, m):
        return sorted((i.iid, i.labels, i.state == "opened") for i in m.handle.links.list(iterator=True))

    def move(self, m, text, remove, add, close):
        m.handle.notes.create({"body": text})
        m.handle.labels = m.labels
        if close:
            m.handle.state_event = "close"
        m.handle.save()

    def create_child(self, m, title, body, labels):
        child = self.project.issues.create({"title": title, "description": body, "labels": labels})
        self.created[child.iid] = child
        return child.iid

    def fill_in_child(self, number, body):
        child = self.created[number]
        child.description = body
        child.save()

    def comment(self, number, text):
        self.created[number].notes.create({"body": text})

    def link_child(self, m, number):
        m.handle.links.create({"target_project_id": self.path, "target_issue_iid": number})


def main():
    args = gp.arguments(__doc__, "--project")
    gp.run(GitLab(args.url, args.project), args.command, args.templates)


if __name__ == "__main__":
    main()
