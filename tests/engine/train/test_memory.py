"""engine.train.memory: the allocator setting the training entry points make (in a fresh process: it is
process-wide and cannot be undone)."""

import subprocess
import sys

import pytest

CODE = """
import torch
from engine.train.memory import keep_freed_memory
ok = keep_freed_memory()
x = torch.ones(64 << 20, dtype=torch.uint8)  # 64 MiB: from the heap now, not a fresh mmap
del x
y = torch.zeros(64 << 20, dtype=torch.uint8)
print(ok, int(y.sum()))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_keep_freed_memory_applies_and_allocation_still_works():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "0"]
