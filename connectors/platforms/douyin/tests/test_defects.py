"""Every simulated defect, rendered as Douyin answers, raises exactly its rule (the shared check)."""
import pytest

import tests.unit.test_defects as shared
from connectors.simkit.defects import DEFECTS


@pytest.mark.parametrize("defect", DEFECTS)
def test_each_defect_raises_its_rule_on_douyin(defect):
    shared.test_each_defect_raises_its_rule("douyin", defect)
