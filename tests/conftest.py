import random

import pytest
import torch


@pytest.fixture(autouse=True)
def seed_everything():
    """Seed Python and torch before every test."""
    random.seed(0)
    torch.manual_seed(0)
