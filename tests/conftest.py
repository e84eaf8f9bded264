import logging

import pytest
import torch

try:  # faiss's OpenMP threads fight pytest's on a 2-core machine (38 s -> 3 s for the faiss tests)
    import faiss

    faiss.omp_set_num_threads(1)
except ImportError:
    pass


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
    yield


@pytest.fixture
def lightning_info():
    """The messages Lightning's rank-zero logger lets through during the test (its filters applied), in order."""
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)
