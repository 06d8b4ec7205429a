"""The shard stage's per-batch token payload survives Beam's shuffle exactly."""

import numpy as np

from pipelines.shard import DocTokens


def test_doc_tokens_round_trip_any_id():
    tokens = np.arange(7, dtype=np.uint16)
    original = DocTokens(np.array([5, 2**63 + 1], np.uint64), ["web/1", "user/wé\nird id"],
                         np.array([4, 3], np.int64), tokens.tobytes())
    back = DocTokens.decode(original.encode())
    assert back.ids == original.ids
    assert back.orders.tolist() == original.orders.tolist()
    assert back.lengths.tolist() == [4, 3]
    assert np.frombuffer(back.tokens, np.uint16).tolist() == list(range(7))
    empty = DocTokens.decode(DocTokens(np.zeros(0, np.uint64), [], np.zeros(0, np.int64),
                                       b"").encode())
    assert empty.ids == [] and empty.tokens == b""
