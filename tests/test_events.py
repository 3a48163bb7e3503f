"""A run's statuses and progress events are declared once (mnistlab.core.events); the lab's pages use the same
names (web/static/events.js), and no page compares a status or a kind with a string of its own."""

import json
import re

from conftest import REPO
from mnistlab.core import events

STATIC = REPO / "src" / "mnistlab" / "web" / "static"


def javascript_constants(name, path=STATIC / "events.js"):
    """{KEY: "value"} of `const NAME = Object.freeze({...})` in events.js."""
    text = path.read_text()
    body = re.search(rf"const {name} = Object\.freeze\(\{{(.*?)\}}\);", text, re.S).group(1)
    return dict(re.findall(r'(\w+): "([^"]*)"', body))


def test_the_pages_names_are_pythons():
    for name, enum in (
        ("RunStatus", events.RunStatus),
        ("EventKind", events.EventKind),
        ("StepPhase", events.StepPhase),
    ):
        assert javascript_constants(name) == {member.name: member.value for member in enum}, name


def test_no_page_compares_a_status_or_kind_with_a_literal():
    literal = re.compile(r'\.(status|kind|phase)\s*===?\s*"')
    offenders = [
        f"{path.name}: {line.strip()}"
        for path in STATIC.glob("*.js")
        for line in path.read_text().splitlines()
        if literal.search(line)
    ]
    assert not offenders, offenders


def test_events_travel_as_the_json_the_pages_read():
    epoch = events.EpochEvent(
        {"epoch": 2, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.6, "val_accuracy": 0.7, "seconds": 1.5}, 5
    )
    step = events.StepEvent(events.StepPhase.WORKING, {"epoch": 1, "step": 3}, 5, 17)
    status = events.StatusEvent(events.RunStatus.DONE, extra={"repeat_of": 4})
    decoded = [json.loads(json.dumps(event.to_json())) for event in (epoch, step, status)]
    assert [event["kind"] for event in decoded] == ["epoch", "step", "status"]
    assert decoded[0]["epoch"] == 2 and decoded[0]["epochs"] == 5 and decoded[0]["val_accuracy"] == 0.7
    assert decoded[1]["phase"] == "working" and decoded[1]["step"] == 3 and decoded[1]["steps"] == 17
    assert decoded[2]["status"] == "done" and decoded[2]["repeat_of"] == 4 and "time" in decoded[2]
    assert events.RunStatus("done") in events.FINISHED and events.RunStatus.RUNNING not in events.FINISHED


def test_the_check_can_fail(tmp_path):
    """A page's name that drifts from Python's is caught."""
    drifted = tmp_path / "events.js"
    drifted.write_text((STATIC / "events.js").read_text().replace('DONE: "done"', 'DONE: "finished"'))
    assert javascript_constants("RunStatus", drifted)["DONE"] == "finished" != events.RunStatus.DONE.value
