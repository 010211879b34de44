"""The Douyin facts the shared manifest has no key for: loaded, checked, refused with one line when wrong."""
from pathlib import Path

import pytest

from connectors import platforms

from ..facts import FACTS, load_facts

FOLDER = Path(__file__).resolve().parents[1]


def test_every_unverified_fact_of_the_sheet_is_named():
    assert set(platforms.manifest("douyin").unverified) == {"rate", "carriers", "push.kinds", "push.signature"}
    assert {"paging.depth_max", "token.access_ttl_s", "token.refresh_ttl_s", "errors.rate_limited_sub_code",
            "push.sign_methods", "ciphertext"} <= set(FACTS.unverified)
    assert (FACTS.paging.depth_max, FACTS.token.access_ttl_s, FACTS.token.refresh_ttl_s) == (10_000, 604_800, 1_209_600)


@pytest.mark.parametrize("edit, reason", [
    (lambda t: t.replace("depth_max = 10000", "depth_max = -1"), "paging.depth_max: Input should be greater than 0"),
    (lambda t: t.replace('"ciphertext"]', '"cipher"]'), "unverified names 'cipher', which is not a key"),
    (lambda t: t.replace("[token]", "[tokens]"), "token: Field required"),
    (lambda t: t.replace("[paging]", "[paging"), "facts.toml"),
])
def test_a_wrong_fact_is_refused_with_one_line(tmp_path, edit, reason):
    path = tmp_path / "facts.toml"
    path.write_text(edit((FOLDER / "facts.toml").read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(ValueError) as refused:
        load_facts(path)
    assert reason in str(refused.value) and "\n" not in str(refused.value) and str(path) in str(refused.value)
