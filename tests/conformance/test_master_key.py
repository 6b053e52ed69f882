"""Rotating the master key (`servicecatalog master-key rotate`): every sealed secret of the database
(AccessKey secrets, launch roles, parameters, states, plans) is sealed anew under the new key in
one transaction; the old key no longer opens the database; a rotation stopped between its commit
and replacing the key file is finished at the next start."""
from __future__ import annotations

import pytest

import sclib
from test_provisioning import HELLO_TF, launch, make_product, wait_task, get_task


def test_rotation_reseals_everything_and_the_old_key_is_refused(fresh_server, make_user):
    srv = fresh_server()
    admin = srv.caller("v3")
    user = srv.create_user()
    srv.cli("launch-roles", "create", sclib.uniq("role-"), "--env", "TF_VAR_x=secret-value")
    product = make_product(admin, HELLO_TF, users=[user])
    caller = srv.caller("v3", (user["AccessKeyId"], user["AccessKeySecret"]))
    pp_id, task_id = launch(caller, product, {"owner": "before"})
    assert wait_task(caller, task_id)["Status"] == "Succeeded"
    old_key = (srv.data_dir / "master.key").read_text()
    srv.stop()

    out = srv.cli("master-key", "rotate").stdout
    assert "re-sealed" in out and old_key not in out
    new_key = (srv.data_dir / "master.key").read_text()
    assert new_key != old_key and len(new_key.strip()) == 64
    assert not (srv.data_dir / "master.key.next").exists()

    srv.start()
    caller = srv.caller("v3", (user["AccessKeyId"], user["AccessKeySecret"]))
    # keys, parameters and state still open: the user's key works, the task reads its parameters
    assert get_task(caller, task_id)["Parameters"]
    assert caller.call("GetProvisionedProduct", {"ProvisionedProductId": pp_id})["ProvisionedProductDetail"]["Status"] == "Available"
    upd = caller.call("UpdateProvisionedProduct", {"ProvisionedProductId": pp_id, "ProductId": product.product_id,
                                                   "ProductVersionId": product.version_id,
                                                   "Parameters": [{"ParameterKey": "owner", "ParameterValue": "after"}]})
    assert upd["ProvisionedProductId"] == pp_id
    last = caller.call("GetProvisionedProduct", {"ProvisionedProductId": pp_id})["ProvisionedProductDetail"]["LastTaskId"]
    assert wait_task(caller, last)["Status"] == "Succeeded"
    assert "launch-roles" not in srv.cli("launch-roles", "list").stderr
    srv.stop()

    # the old key no longer opens this database
    (srv.data_dir / "master.key").write_text(old_key)
    with pytest.raises(RuntimeError, match="master key"):
        srv.start()
    (srv.data_dir / "master.key").write_text(new_key)


def test_an_interrupted_rotation_is_finished_at_start(fresh_server):
    """The database was re-sealed but the key file not yet replaced: start-up adopts master.key.next."""
    srv = fresh_server()
    srv.stop()
    old_key = (srv.data_dir / "master.key").read_text()
    srv.cli("master-key", "rotate")
    new_key = (srv.data_dir / "master.key").read_text()
    # put the files back as a rotation stopped just after its commit leaves them
    (srv.data_dir / "master.key.next").write_text(new_key)
    (srv.data_dir / "master.key").write_text(old_key)
    srv.start()
    assert srv.caller("v3").call("ListRegions")["Regions"]
    assert (srv.data_dir / "master.key").read_text() == new_key
    assert not (srv.data_dir / "master.key.next").exists()


def test_a_rotation_with_a_wrong_key_changes_nothing(fresh_server):
    srv = fresh_server()
    srv.stop()
    bad = srv.cli("master-key", "rotate", "--new-key", "abc", check=False)
    assert bad.returncode != 0 and "64 hex digits" in bad.stderr
    srv.start()
    assert srv.caller("v3").call("ListRegions")["Regions"]
