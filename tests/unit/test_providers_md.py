"""docs/providers.md is generated from providers.yaml: the committed file must be current."""

from __future__ import annotations

from tools import providers_md


def test_committed_providers_md_is_current() -> None:
    expected = providers_md.generate()
    assert providers_md.OUTPUT.read_text() == expected, "docs/providers.md is out of date: run python -m tools.providers_md"


def test_provenance_comments_are_read() -> None:
    text = """providers:
  # a free comment
  # source: https://a.example/docs, client lib ts/src/x.ts (paths, fields) · confidence: P
  # unconfirmed: the error body
  # checked: the docs
  - name: alpha
    category: news

  - name: beta
    category: news
"""
    found = providers_md.read_provenance(text)
    assert set(found) == {"alpha"}
    assert found["alpha"] == providers_md.Provenance(("https://a.example/docs", "client lib ts/src/x.ts (paths, fields)"), "P", "the error body", "the docs")


def test_check_flags_a_stale_file(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    stale = tmp_path / "providers.md"
    stale.write_text("old\n")
    monkeypatch.setattr(providers_md, "OUTPUT", stale)
    assert providers_md.main(["--check"]) == 1
    assert providers_md.main([]) == 0 and providers_md.main(["--check"]) == 0
