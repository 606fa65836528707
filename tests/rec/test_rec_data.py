"""Loading, validating and splitting interactions."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from negmine.core.errors import ConfigError, DataError
from negmine.rec.data import from_arrays, load_interactions, split_interactions

ROWS = [(7, 100, 5, 10), (7, 101, 4, 20), (7, 102, 1, 30), (3, 100, 5, 5), (3, 103, 4, 6), (9, 101, 5, 1)]


def test_rows_and_ids_do_not_depend_on_file_order(tmp_path: Path, make_csv) -> None:
    a = load_interactions(make_csv(tmp_path / "a.csv", ROWS), min_rating=4)
    rows = ROWS[:]
    random.Random(1).shuffle(rows)
    b = load_interactions(make_csv(tmp_path / "b.csv", rows), min_rating=4)
    assert a.user_ids.tolist() == [3, 7, 9] and a.item_ids.tolist() == [100, 101, 102, 103]
    for f in ("users", "items", "ratings", "times", "positive"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    assert a.fingerprint() == b.fingerprint()
    pos = a.positives()  # user 7 (row 1): items 100, 101 (rows 0, 1); 102 rated 1 is not a positive
    assert pos.row(1).tolist() == [0, 1] and a.stats["low_ratings"] == 1


def test_formats_agree(tmp_path: Path, make_csv) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    csv = load_interactions(make_csv(tmp_path / "x.csv", ROWS))
    tsv = load_interactions(make_csv(tmp_path / "x.tsv", ROWS, sep="\t"))
    ml = tmp_path / "u.data"
    ml.write_text("".join("\t".join(map(str, r)) + "\n" for r in ROWS))
    movielens = load_interactions(tmp_path)  # a directory holding u.data
    cols = list(zip(*ROWS))
    pq.write_table(pa.table({"u": cols[0], "i": cols[1], "r": [float(x) for x in cols[2]], "t": cols[3]}),
                   tmp_path / "x.parquet")
    parquet = load_interactions(tmp_path / "x.parquet", user_col="u", item_col="i", rating_col="r", time_col="t")
    for other in (tsv, movielens, parquet):
        assert other.fingerprint() == csv.fingerprint()


@pytest.mark.parametrize(("rows", "header", "kwargs", "message"), [
    (ROWS, "user_id,item_id,rating,timestamp", {"user_col": "uid"}, "no column 'uid' for the user"),
    (ROWS, "user,item_id,rating,timestamp", {}, "no column 'user_id'"),
    ([(7, "abc", 5, 1)], "user_id,item_id,rating,timestamp", {}, ":2: column 'item_id' holds 'abc', not an integer"),
    ([(7, 1, 5, 1), ("x7", 1, 5, 1)], "user_id,item_id,rating,timestamp", {}, ":3: column 'user_id' holds 'x7'"),
    ([(7, 1, "good", 1)], "user_id,item_id,rating,timestamp", {}, "column 'rating' holds 'good', not a number"),
    ([(7, 1.5, 5, 1)], "user_id,item_id,rating,timestamp", {}, "holds '1.5', not an integer"),
    ([], "user_id,item_id,rating,timestamp", {}, "no interactions (empty file)"),
    ([(7, 1, 2, 1), (8, 1, 5, 1)], "user_id,item_id,rating,timestamp", {"min_rating": 4, "require_positives": True},
     "1 user(s) have no interaction rated >= 4 (e.g. '7'); lower --min-rating or drop --require-positives"),
    ([(7, 1, 2, 1), (8, 1, 5, 1)], "user_id,item_id,rating,timestamp",
     {"min_rating": 4, "drop_users_without_positives": False}, "1 user(s) have no interaction rated >= 4"),
])
def test_bad_input_is_one_line(tmp_path: Path, make_csv, rows, header, kwargs, message) -> None:
    with pytest.raises(DataError) as err:
        load_interactions(make_csv(tmp_path / "bad.csv", rows, header=header), **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_empty_file_without_header(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(DataError, match="empty file"):
        load_interactions(tmp_path / "e.csv")


def test_duplicates_kept_once_and_counted(tmp_path: Path, make_csv) -> None:
    x = load_interactions(make_csv(tmp_path / "d.csv", [*ROWS, (7, 100, 2, 99), (7, 100, 5, 50)]), min_rating=4)
    assert x.stats["duplicates"] == 2 and len(x) == len(ROWS)
    row = np.flatnonzero((x.user_ids[x.users] == 7) & (x.item_ids[x.items] == 100))
    assert x.ratings[row].tolist() == [5] and x.times[row].tolist() == [50]  # highest rating, then latest


def test_users_without_positives_are_skipped_and_counted_by_default(tmp_path: Path, make_csv) -> None:
    # issue 21 item 5: real logs always have such users; --drop-users-without-positives stays a no-op
    f = make_csv(tmp_path / "u.csv", [(7, 1, 2, 1), (8, 1, 5, 1)])
    for kwargs in ({}, {"drop_users_without_positives": True}):
        x = load_interactions(f, min_rating=4, **kwargs)
        assert x.user_ids.tolist() == [8] and x.stats["users_without_positives_dropped"] == 1


def test_time_split_holds_out_each_users_latest() -> None:
    # user 1: items 10..14 at times 5..1 (item 10 is the latest); user 2: a single positive
    x = from_arrays([1] * 5 + [2], [10, 11, 12, 13, 14, 10], [5] * 6, [5, 4, 3, 2, 1, 9])
    d = split_interactions(x, "time", 0.4)
    assert x.item_ids[d.test.row(0)].tolist() == [10, 11] and d.test.row(1).tolist() == []
    assert x.item_ids[d.train.row(1)].tolist() == [10]  # a user keeps at least one training positive
    last = split_interactions(x, "leave-last")
    assert x.item_ids[last.test.row(0)].tolist() == [10]
    assert d.exclude.row(0).tolist() == [0, 1, 2, 3, 4]


def test_random_split_is_seeded_and_sized() -> None:
    x = from_arrays(np.repeat(np.arange(50), 10), np.tile(np.arange(10), 50), None, None)
    a, b = split_interactions(x, "random", 0.3, seed=1), split_interactions(x, "random", 0.3, seed=1)
    c = split_interactions(x, "random", 0.3, seed=2)
    assert np.array_equal(a.test.indices, b.test.indices) and not np.array_equal(a.test.indices, c.test.indices)
    assert a.test.counts().tolist() == [3] * 50
    with pytest.raises(ConfigError, match="needs a time column"):
        split_interactions(x, "time")


def test_low_ratings_policy_sets_exclude() -> None:
    x = from_arrays([1, 1, 1], [10, 11, 12], [5, 1, 4], [1, 2, 3], min_rating=4, low_ratings="ignore")
    assert split_interactions(x, "time", 0).exclude.row(0).tolist() == [0, 1, 2]
    y = from_arrays([1, 1, 1], [10, 11, 12], [5, 1, 4], [1, 2, 3], min_rating=4, low_ratings="negative")
    assert split_interactions(y, "time", 0).exclude.row(0).tolist() == [0, 2]


def test_movielens_100k(ml100k: Path) -> None:
    x = load_interactions(ml100k, min_rating=4, drop_users_without_positives=True)
    assert x.stats["rows"] == 100_000 and x.stats["duplicates"] == 0
    assert x.stats["users_without_positives_dropped"] == 1 and x.n_users == 942 and x.n_items == 1682
    assert x.stats["positives"] == 55_375
    d = split_interactions(x, "time", 0.2)
    assert len(d.train.indices) + len(d.test.indices) == 55_375
    assert d.train.counts().min() >= 1
