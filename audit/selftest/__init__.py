"""The planted-defect demo (demo) and the self-test that audits the auditors with it (selftest)."""

from audit.selftest.demo import build_demo
from audit.selftest.selftest import run_selftest, selftest_main

__all__ = ["build_demo", "run_selftest", "selftest_main"]
