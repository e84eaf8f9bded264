"""Fixtures of the seed tests."""

import types

import pytest

from lightning_memrl.hippocampal import hub as hippocampal_hub


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """A fake `huggingface_hub`: uploads copy into `tmp_path/hub/<repo_id>`, downloads return that directory."""
    import shutil

    root = tmp_path / "hub"

    class HfApi:
        def create_repo(self, repo_id, private=False, exist_ok=False):
            (root / repo_id).mkdir(parents=True, exist_ok=exist_ok)

        def upload_folder(self, repo_id, folder_path):
            shutil.copytree(folder_path, root / repo_id, dirs_exist_ok=True)

    def snapshot_download(repo_id):
        if not (root / repo_id).is_dir():
            raise FileNotFoundError(repo_id)
        return str(root / repo_id)

    fake = types.SimpleNamespace(HfApi=HfApi, snapshot_download=snapshot_download)
    monkeypatch.setattr(hippocampal_hub, "hub_client", lambda: fake)
    return root
