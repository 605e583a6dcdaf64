import numpy as np
import pytest

from bdnn.evaluation.hamming import hamming_distance_blocks, hamming_distances, pack_codes


def brute_force_distances(query_codes, database_codes):
    return (query_codes[:, None, :] != database_codes[None, :, :]).sum(axis=2)


def random_codes(rng, n, n_bits):
    return rng.integers(0, 2, size=(n, n_bits), dtype=np.uint8)


def test_pack_bit_order_msb_first():
    n_bits = 11
    codes = np.eye(n_bits, dtype=np.uint8)
    packed = pack_codes(codes)
    assert packed.shape == (n_bits, 2)
    assert packed.dtype == np.uint8
    for bit in range(n_bits):
        expected = np.zeros(2, dtype=np.uint8)
        expected[bit // 8] = 1 << (7 - bit % 8)
        assert np.array_equal(packed[bit], expected), f"bit {bit}"


def test_pack_leaves_padding_bits_zero():
    packed = pack_codes(np.ones((3, 13), dtype=np.uint8))
    assert np.array_equal(packed[:, 0], [255, 255, 255])
    assert np.array_equal(packed[:, 1], [0b11111000] * 3)


@pytest.mark.parametrize("n_bits", [1, 7, 8, 12, 16, 24, 32, 33, 48, 64, 65, 128, 130])
def test_distances_match_brute_force(n_bits):
    rng = np.random.default_rng(n_bits)
    query_codes = random_codes(rng, 9, n_bits)
    database_codes = random_codes(rng, 40, n_bits)
    distances = hamming_distances(pack_codes(query_codes), pack_codes(database_codes))
    assert distances.shape == (9, 40)
    assert distances.dtype == np.uint8
    assert np.array_equal(distances, brute_force_distances(query_codes, database_codes))


def test_distances_uint16_beyond_248_bits():
    rng = np.random.default_rng(0)
    query_codes = random_codes(rng, 3, 300)
    database_codes = np.concatenate([1 - query_codes, random_codes(rng, 5, 300)])
    distances = hamming_distances(pack_codes(query_codes), pack_codes(database_codes))
    assert distances.dtype == np.uint16
    assert np.array_equal(distances, brute_force_distances(query_codes, database_codes))
    assert np.all(np.diag(distances[:, :3]) == 300)


def test_complement_codes_reach_max_distance():
    codes = random_codes(np.random.default_rng(1), 4, 32)
    distances = hamming_distances(pack_codes(codes), pack_codes(1 - codes))
    assert np.all(np.diag(distances) == 32)


@pytest.mark.parametrize("chunk_size", [1, 2, 5, 7, 100])
def test_blocks_cover_all_queries_in_order(chunk_size):
    rng = np.random.default_rng(2)
    query_packed = pack_codes(random_codes(rng, 7, 40))
    database_packed = pack_codes(random_codes(rng, 30, 40))
    full = hamming_distances(query_packed, database_packed)

    blocks = list(hamming_distance_blocks(query_packed, database_packed, chunk_size=chunk_size))
    starts = [start for start, _ in blocks]
    assert starts == list(range(0, 7, chunk_size))
    assert all(block.shape[0] <= chunk_size for _, block in blocks)
    assert np.array_equal(np.concatenate([block for _, block in blocks]), full)


def test_blocks_are_independent_arrays():
    rng = np.random.default_rng(3)
    query_packed = pack_codes(random_codes(rng, 4, 16))
    database_packed = pack_codes(random_codes(rng, 6, 16))
    first, second = (block for _, block in hamming_distance_blocks(query_packed, database_packed, chunk_size=2))
    assert not np.shares_memory(first, second)


def test_pack_rejects_invalid_codes():
    with pytest.raises(ValueError, match="only 0 and 1"):
        pack_codes(np.array([[0, 2]], dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        pack_codes(np.array([[0, 1]], dtype=np.int64))
    with pytest.raises(ValueError, match="2-D"):
        pack_codes(np.array([0, 1], dtype=np.uint8))
    with pytest.raises(ValueError, match="at least one bit"):
        pack_codes(np.zeros((3, 0), dtype=np.uint8))


def test_distances_reject_mismatched_widths():
    with pytest.raises(ValueError, match="same number of bytes"):
        hamming_distances(np.zeros((2, 4), dtype=np.uint8), np.zeros((3, 5), dtype=np.uint8))


def test_distances_reject_unpacked_dtype():
    with pytest.raises(ValueError, match="database_packed must have dtype uint8"):
        hamming_distances(np.zeros((2, 4), dtype=np.uint8), np.zeros((3, 4), dtype=np.int32))


def test_blocks_reject_nonpositive_chunk_size():
    packed = np.zeros((2, 4), dtype=np.uint8)
    with pytest.raises(ValueError, match="chunk_size must be a positive"):
        next(hamming_distance_blocks(packed, packed, chunk_size=0))
