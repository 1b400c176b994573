"""Lesson 09 in userspace: id maps are checked before anything is created."""

from __future__ import annotations

import pytest

from pycontain.cli import FLAG_OF, _user_options
from pycontain.errors import SpecError
from pycontain.namespaces import user
from pycontain.runtime import DEFAULT_NAMESPACES, Spec


def test_user_namespace_is_opt_in_and_maps_root_to_100000_by_default():
    assert "user" not in Spec(["true"]).namespaces
    assert "user" not in DEFAULT_NAMESPACES
    spec = Spec(["true"], user_namespace=True)
    assert spec.namespaces == DEFAULT_NAMESPACES | {"user"}
    assert spec.id_maps == (((0, 100000, 65536),), ((0, 100000, 65536),))
    assert Spec(["true"], namespaces="user,uts", uid_map=[(0, 200000, 10)]).id_maps == (
        ((0, 200000, 10),), ((0, 200000, 10),))


@pytest.mark.parametrize("mapping,words", [
    ([(0, 100000, 0)], "at least one id"),
    ([(0, 100000, 10), (5, 300000, 10)], "do not overlap"),
    ([(0, 100000, 10), (20, 100005, 10)], "do not overlap"),
    ([(0, 2**32 - 10, 65536)], "ids from 0 to 4294967294"),
    ([(-1, 100000, 1)], "ids from 0"),
    ([(i, 100000 + i, 1) for i in range(341)], "at most 340 lines"),
    ([], "a list of"),
    ("0 100000 65536", "a list of"),
    ([(0, 100000)], "a list of"),
])
def test_bad_maps_are_refused_in_userspace(mapping, words):
    with pytest.raises(SpecError, match=words) as info:
        Spec(["true"], namespaces="user", uid_map=mapping)
    assert info.value.parameter == "uid_map"


def test_340_lines_are_accepted():
    lines = [(i, 100000 + i, 1) for i in range(340)]
    assert len(user.validate_map("uid_map", lines)) == 340


def test_maps_need_the_user_namespace():
    with pytest.raises(SpecError, match="set only with 'user'"):
        Spec(["true"], namespaces="uts", uid_map=[(0, 100000, 1)])


def test_rootfs_with_user_needs_net(tmp_path):
    from pycontain.fs import rootfs

    with pytest.raises(SpecError, match="a set with 'net' in it, when it has 'user' and a rootfs"):
        Spec(["true"], namespaces="user,mnt", rootfs=rootfs.ensure())


def test_map_text_and_outside_root():
    assert user.map_text([(0, 100000, 65536), (65536, 5, 1)]) == "0 100000 65536\n65536 5 1\n"
    assert user.outside_root([(0, 100000, 65536)]) == 100000
    assert user.outside_root([(1, 100000, 65536)]) is None


def test_cli_flags_become_spec_options():
    assert _user_options(False, None) == {}
    assert _user_options(True, None) == {"user_namespace": True}
    assert _user_options(False, "300000") == {"user_namespace": True,
                                               "uid_map": [(0, 300000, 65536)]}
    with pytest.raises(SpecError, match="`uid_map`") as caught:  # the Spec parameter it sets
        _user_options(False, "-5")
    assert caught.value.worded(FLAG_OF).startswith("--map-root must be")  # the CLI's name
