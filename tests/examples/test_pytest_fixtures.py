"""The pytest plugin example, run here as a user's suite runs it (through the plugin the
installed package registers)."""

from __future__ import annotations

from examples.pytest_fixtures import (
    test_buffers_with_options_each_in_their_own_files,
    test_code_under_test_goes_through_storage,
    test_refused_upload_leaves_nothing_in_s3,
    test_upload_spools_to_s3_and_comes_back_whole,
)

__all__ = [
    "test_buffers_with_options_each_in_their_own_files",
    "test_code_under_test_goes_through_storage",
    "test_refused_upload_leaves_nothing_in_s3",
    "test_upload_spools_to_s3_and_comes_back_whole",
]
