"""control.begin/checkpoint/end: a notebook re-executed from the top replays its unchanged steps with 0 calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.conftest import fake_config
from tests.fake_openai import FakeOpenAI
from tests.scripted import Script, done, talk
from troupe import control
from troupe.errors import SpecError
from troupe.llm import LLMGateway, set_default_gateway


@pytest.fixture
def uncached_default(fake: FakeOpenAI, tmp_path: Path) -> Iterator[LLMGateway]:
    """The process default gateway on the fake server, with the call cache off: only control can replay."""
    gateway = LLMGateway(fake_config(fake, tmp_path, **{"cache.enabled": "false"}))
    set_default_gateway(gateway)
    Script({"Lisa Carter": lambda n: [talk(f"Lisa line {n}"), done()], "Oscar": lambda n: [talk(f"Oscar line {n}"), done()]}).install(fake)
    yield gateway
    control.reset()
    set_default_gateway(None)


def notebook(path: Path, last_cell: str, after_first_cells: Callable[[], None] = lambda: None) -> list[str]:
    """A notebook written as for TinyTroupe, with only the imports changed."""
    from troupe import TinyWorld
    from troupe.examples import create_lisa_the_data_scientist, create_oscar_the_architect

    control.begin(path)
    lisa = create_lisa_the_data_scientist(transcript=False)
    oscar = create_oscar_the_architect(transcript=False)
    lisa.listen_and_act("Tell me about your life.")
    oscar.listen_and_act("What are you designing these days?")
    control.checkpoint()
    after_first_cells()
    world = TinyWorld("Chat Room", [lisa, oscar], transcript=False)
    world.make_everyone_accessible()
    lisa.listen(last_cell)
    world.run(2)
    control.end()
    first_cells = [e.content for a in (lisa, oscar) for e in a.state.episodes if e.type == "TALK" and e.step == 0]
    return first_cells + [e.content for e in world.state.events if e.type == "TALK"]


def test_rerun_replays_everything_and_a_later_change_replays_the_first_steps(fake: FakeOpenAI, uncached_default: LLMGateway, tmp_path: Path) -> None:
    path = tmp_path / "notebook.cache.json"
    first = notebook(path, "Talk to Oscar to know more about him")
    live_calls = fake.calls
    assert live_calls >= 4 and path.is_file()

    # Re-executed unchanged: every step replays from the file, no call reaches the model.
    assert notebook(path, "Talk to Oscar to know more about him") == first
    assert fake.calls == live_calls and control.cache_hits() == live_calls and control.cache_misses() == 0

    # A later cell changed: the first cells make 0 calls, the changed part goes to the model.
    calls_at: list[int] = []
    changed = notebook(path, "Ask Oscar about his favourite building", lambda: calls_at.append(fake.calls))
    assert calls_at == [live_calls]  # the first two steps: 0 calls
    assert fake.calls > live_calls  # the changed step ran live
    assert changed[:2] == first[:2] == ["Lisa line 0", "Oscar line 0"]  # the first cells' replies, replayed
    assert changed[2:] != first[2:]
    # end() keeps only the calls this execution used: the abandoned branch is gone.
    recorded = json.loads(path.read_text())["calls"]
    assert len(recorded) == control.cache_hits() + (fake.calls - live_calls)


def test_without_control_the_same_rerun_pays_again(fake: FakeOpenAI, uncached_default: LLMGateway) -> None:
    from troupe.examples import create_lisa_the_data_scientist

    for expected in (1, 2):  # one call per turn (TALK then DONE), paid again on the rerun
        lisa = create_lisa_the_data_scientist(transcript=False)
        lisa.listen_and_act("Tell me about your life.")
        assert fake.calls == expected


def test_begin_twice_end_unstarted_and_a_foreign_file_are_clear_errors(uncached_default: LLMGateway, tmp_path: Path) -> None:
    control.begin(tmp_path / "a.json")
    with pytest.raises(RuntimeError, match="already started"):
        control.begin(tmp_path / "b.json")
    control.end()
    with pytest.raises(RuntimeError, match="not started"):
        control.end()
    foreign = tmp_path / "tinytroupe.cache.json"
    foreign.write_text(json.dumps([{"event_hash": 1}]))
    with pytest.raises(SpecError, match=r"tinytroupe.cache.json: format: .*cannot be replayed\); delete it"):
        control.begin(foreign)
    assert control.current_simulation() is None


def test_end_gives_the_gateway_its_own_cache_back(uncached_default: LLMGateway, tmp_path: Path) -> None:
    own = uncached_default.cache
    control.begin(tmp_path / "a.json")
    assert uncached_default.cache is not own
    control.end()
    assert uncached_default.cache is own
