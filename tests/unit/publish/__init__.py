import pytest

# the contract suite lives outside test_ modules (e2e subclasses it too): show its failed asserts in full
pytest.register_assert_rewrite("tests.unit.publish.contract")
