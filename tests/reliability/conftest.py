import pytest
import yaml

from tests.reliability.helpers import TINY


@pytest.fixture(scope="session")
def tiny_config(tmp_path_factory):
    """The `TINY` fit config as a file."""
    path = tmp_path_factory.mktemp("configs") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path
