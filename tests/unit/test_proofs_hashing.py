"""RFC 9162 §2.1.1 hashing against the basic vectors listed in vectors/merkle/NOTICE.md."""

from hashlib import sha256

from indelible.proofs import EMPTY_ROOT, HASH_SIZE, LEAF_PREFIX, NODE_PREFIX, leaf_hash, node_hash


def test_the_empty_tree_root_is_sha256_of_nothing():
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_the_leaf_hash_of_the_empty_string_matches_the_vector():
    assert leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"


def test_the_leaf_hash_of_l123456_matches_the_vector():
    assert (
        leaf_hash(b"L123456").hex()
        == "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )


def test_the_node_hash_of_n123_and_n456_matches_the_vector():
    assert (
        node_hash(b"N123", b"N456").hex()
        == "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


def test_leaves_and_nodes_are_domain_separated_by_their_prefixes():
    assert (LEAF_PREFIX, NODE_PREFIX, HASH_SIZE) == (b"\x00", b"\x01", 32)
    assert leaf_hash(b"ab") == sha256(b"\x00ab").digest()
    assert node_hash(b"a", b"b") == sha256(b"\x01ab").digest()
    assert leaf_hash(b"\x01ab") != node_hash(b"a", b"b")
