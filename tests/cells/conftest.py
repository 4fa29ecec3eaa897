"""Shared fixtures of the cells tests."""
import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: threads only add contention on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
