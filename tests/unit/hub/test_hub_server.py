"""The stand-in Hub answers huggingface_hub the way the Hub does (so the push tests test something real)."""

from __future__ import annotations

import pytest
from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.hub_server import PLANTED_TOKEN


@pytest.fixture
def api(local_hub):
    api = HfApi(endpoint=constants.ENDPOINT, token=PLANTED_TOKEN)
    api.create_repo("demo")
    api.upload_file(path_or_fileobj=b'{"a": 1}', path_in_repo="config.json", repo_id="tlnlp-tester/demo")
    api.upload_file(path_or_fileobj=b"x", path_in_repo="sub/dir/file.txt", repo_id="tlnlp-tester/demo")
    return api


def test_file_responses_carry_commit_and_etag(api, local_hub):
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    meta = get_hf_file_metadata(hf_hub_url("tlnlp-tester/demo", "config.json"))
    assert meta.commit_hash == local_hub.repos["tlnlp-tester/demo"].commits[-1].oid
    assert meta.etag and meta.size == len(b'{"a": 1}')


def test_downloads_by_branch_and_by_commit(api, tmp_path):
    info = api.model_info("tlnlp-tester/demo")
    assert {s.rfilename for s in info.siblings} >= {"config.json", "sub/dir/file.txt"}
    path = hf_hub_download("tlnlp-tester/demo", "config.json", revision=info.sha)
    assert open(path, "rb").read() == b'{"a": 1}'
    folder = snapshot_download("tlnlp-tester/demo", cache_dir=tmp_path / "snap")
    assert (tmp_path / "snap").exists() and open(f"{folder}/sub/dir/file.txt").read() == "x"
    assert sorted(api.list_repo_files("tlnlp-tester/demo")) == [".gitattributes", "config.json", "sub/dir/file.txt"]


def test_not_found_errors_carry_their_codes(api, local_hub, tmp_path):
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("tlnlp-tester/demo", "missing.json", cache_dir=tmp_path)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("tlnlp-tester/nope", "config.json", cache_dir=tmp_path)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("tlnlp-tester/demo", "config.json", revision="0" * 40, cache_dir=tmp_path)


def test_writes_need_a_known_token(local_hub):
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(endpoint=constants.ENDPOINT, token="hf_" + "wrong" * 6).create_repo("other")
    assert err.value.response.status_code == 401
    assert HfApi(endpoint=constants.ENDPOINT, token=PLANTED_TOKEN).create_repo("other", exist_ok=True)
    HfApi(endpoint=constants.ENDPOINT, token=PLANTED_TOKEN).create_repo("other", exist_ok=True)  # 409 accepted


def test_invalid_card_metadata_is_rejected(api):
    bad = b"---\nmodel-index:\n- name: x\n  results:\n  - metrics: oops\n---\n# card\n"
    with pytest.raises(ValueError, match="Invalid metadata"):
        api.upload_file(path_or_fileobj=bad, path_in_repo="README.md", repo_id="tlnlp-tester/demo")
