"""Fuzzing (Hypothesis) of manifest lines: whatever a line holds - any JSON value, any bytes - the
reader returns, keeps every well-formed line and names each bad one by file:line (kind from the
documented set); it never raises on content and never opens a path outside the manifest's folder."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data.manifest import read_manifest

KINDS = {"malformed_json", "malformed_record", "not_utf8", "path_outside_root"}
FUZZ = settings(max_examples=80, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=5),
    max_leaves=15,
)
records = st.fixed_dictionaries(
    {"image": st.one_of(st.text(max_size=12), st.sampled_from(["a.jpg", "../x.jpg", "/etc/passwd", ""]))},
    optional={
        "width": st.one_of(st.integers(-2, 5000), st.floats(), st.text(max_size=3)),
        "height": st.one_of(st.integers(-2, 5000), st.text(max_size=3)),
        "plates": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "box": st.lists(
                            st.one_of(st.floats(), st.integers(-5, 500), st.text(max_size=2)), max_size=5
                        )
                    },
                    optional={"text": json_values, "chars": json_values, "lines": json_values},
                ),
                max_size=3,
            ),
            json_values,
        ),
        "region": json_values,
        "split": json_values,
    },
)
line = st.one_of(
    records.map(lambda r: json.dumps(r).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b" ")),
)


@FUZZ
@given(st.lists(line, min_size=1, max_size=8))
def test_any_manifest_lines(tmp_path_factory, lines):
    folder = tmp_path_factory.mktemp("m")
    (folder / "labels.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    manifest = read_manifest(folder)
    counted = {i.line for i in manifest.images} | {i.line for i in manifest.issues}
    nonblank = {n for n, raw in enumerate(lines, start=1) if raw.strip()}
    assert counted <= nonblank and len(manifest.images) + len(manifest.issues) >= len(counted)
    # every non-blank line is accounted for (read, or an issue naming it) - nothing dropped silently
    undecodable = {n for n in nonblank if n not in counted}
    assert all(not lines[n - 1].decode("utf-8", "replace").strip() for n in undecodable)
    for issue in manifest.issues:
        assert issue.kind in KINDS and issue.file == str(folder / "labels.jsonl") and issue.line in nonblank
    for item in manifest.images:
        assert (folder / item.image).resolve().is_relative_to(folder.resolve())
