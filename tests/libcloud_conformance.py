#!/usr/bin/env python3
"""Drives cloudstack-sim with Apache Libcloud's CloudStack driver, unchanged.

A second client nobody here wrote, richer than `cs`: Libcloud parses the
answers into objects (nodes, sizes, key pairs, addresses, rules), so a
missing or misnamed field fails here. Run by tests/cli/sim.rs; by hand,
against a fresh `cloudstack-sim ... --project team`:

    CLOUDSTACK_ENDPOINT=http://127.0.0.1:PORT/client/api \
    CLOUDSTACK_KEY=... CLOUDSTACK_SECRET=... python3 tests/libcloud_conformance.py

The secret comes from the environment, never from the command line. Prints
one line per check group and `ok (N checks)` at the end.

Where Libcloud disagrees with Apache CloudStack itself, the simulator
follows CloudStack and this script works around Libcloud, with a comment
naming the CloudStack source.
"""

import os
import sys
import time

from libcloud.common.types import InvalidCredsError, ProviderError
from libcloud.compute.providers import get_driver
from libcloud.compute.types import NodeState, Provider, StorageVolumeState

PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJO1EenNbQ84XdXET9BMbAjMAc/lNQ2dZlSHUVTOuEa/"
    " conformance"
)
# `ssh-keygen -l -E md5` of PUBLIC_KEY.
FINGERPRINT = "d5:70:1e:55:c4:8f:bf:9a:03:73:f4:a7:83:7b:12:c6"

checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        raise AssertionError(what)


def driver(secret):
    cls = get_driver(Provider.CLOUDSTACK)
    url = os.environ["CLOUDSTACK_ENDPOINT"]
    # `url=` sets host, port and path, not the scheme: `secure` does.
    return cls(os.environ["CLOUDSTACK_KEY"], secret, url=url, secure=url.startswith("https:"))


def catalogue(d):
    zones = d.list_locations()
    by_name = {z.name: z for z in zones}
    check(set(by_name) == {"Sim-Basic", "Sim-Advanced"}, f"zones: {sorted(by_name)}")
    zone = by_name["Sim-Advanced"]
    check(all(len(z.id) == 36 for z in zones), "zone ids are UUIDs")

    images = d.list_images(location=zone)
    debian = [i for i in images if i.name == "Debian 12"]
    check(len(debian) == 1, f"one Debian 12 template in the zone: {[i.name for i in images]}")
    image = debian[0]
    check(image.extra["hypervisor"] == "KVM", f"hypervisor: {image.extra}")
    check(image.extra["format"] == "QCOW2", f"format: {image.extra}")
    check(image.extra["os"] == "Debian GNU/Linux 12 (64-bit)", f"os: {image.extra}")
    check(image.extra["size"] == 3 * 1024**3, f"size: {image.extra}")

    sizes = {s.name: s for s in d.list_sizes()}
    check("Small Instance" in sizes, f"sizes: {sorted(sizes)}")
    size = sizes["Small Instance"]
    check(size.ram == 512 and size.extra["cpu"] == 1, f"Small Instance: {size.ram} MB, {size.extra}")
    check(sizes["Large Instance"].ram == 8192, "Large Instance has 8 GB")
    print(f"catalogue: {len(by_name)} zones, {len(images)} images, {len(sizes)} sizes")
    return zone, image, size


def key_pairs(d):
    created = d.create_key_pair("lc-created")
    check(created.name == "lc-created", f"created name: {created.name}")
    check(created.private_key and "PRIVATE KEY" in created.private_key, "createSSHKeyPair returns the private key")
    check(len(created.fingerprint.split(":")) == 16, f"an MD5 fingerprint: {created.fingerprint}")

    imported = d.import_key_pair_from_string("lc-imported", PUBLIC_KEY)
    check(imported.name == "lc-imported", f"imported name: {imported.name}")
    check(imported.fingerprint == FINGERPRINT, f"imported fingerprint: {imported.fingerprint}")
    check(imported.private_key is None, "registering returns no private key")

    listed = {k.name: k for k in d.list_key_pairs()}
    check(set(listed) >= {"lc-created", "lc-imported"}, f"listed: {sorted(listed)}")
    check(listed["lc-imported"].fingerprint == FINGERPRINT, "listed fingerprint")
    check(d.get_key_pair("lc-created").fingerprint == created.fingerprint, "get_key_pair by name")

    try:
        d.import_key_pair_from_string("lc-imported", PUBLIC_KEY)
        raise AssertionError("registering a taken name must fail")
    except ProviderError as e:
        check(e.http_code == 431, f"a taken name is a 431: {e.http_code} {e.value}")

    # Libcloud's delete_key_pair returns `res["success"] == "true"`, the
    # string of old servers; CloudStack 4.x serialises SuccessResponse's
    # `Boolean success` with Gson (api/.../response/SuccessResponse.java,
    # server/.../api/response/ApiResponseSerializer.java) as JSON `true`, so
    # Libcloud reports False for a deletion that succeeded. Check the list.
    d.delete_key_pair(created)
    listed = {k.name for k in d.list_key_pairs()}
    check("lc-created" not in listed, f"deleted key pair gone: {sorted(listed)}")
    check("lc-imported" in listed, "the other key pair stays")
    print(f"key pairs: created, imported, listed, deleted ({len(listed)} left)")
    return imported


def node_life(d, zone, image, size, key):
    node = d.create_node(
        name="lc-web",
        size=size,
        image=image,
        location=zone,
        ex_keyname=key.name,
        ex_displayname="Libcloud web",
        ex_userdata="#cloud-config\n{}\n",
        # Libcloud sends startvm=False unless told otherwise.
        ex_start_vm=True,
    )
    check(node.name == "lc-web", f"node name: {node.name}")
    check(node.state == NodeState.RUNNING, f"a deployed node runs: {node.state}")
    check(len(node.private_ips) == 1 and node.private_ips[0].startswith("10.1.1."), f"private ips: {node.private_ips}")
    check(node.public_ips == [], f"no public ip yet: {node.public_ips}")
    check(node.extra["key_name"] == key.name, f"key pair: {node.extra}")
    check(node.extra["zone_id"] == zone.id, f"zone: {node.extra}")
    check(node.extra["image_id"] == image.id, f"template: {node.extra}")
    check(node.extra["size_id"] == size.id, f"offering: {node.extra}")

    nodes = {n.id: n for n in d.list_nodes()}
    check(node.id in nodes, "list_nodes lists the node")
    listed = nodes[node.id]
    check(listed.state == NodeState.RUNNING, f"listed state: {listed.state}")
    check(listed.extra["ip_forwarding_rules"] == [], "no static NAT rule")
    check(listed.extra["port_forwarding_rules"] == [], "no port forwarding rule")
    check([n.id for n in d.list_nodes(location=zone)].count(node.id) == 1, "list_nodes by zone")
    got = d.ex_get_node(node.id)
    check(got.name == "lc-web" and got.private_ips == node.private_ips, "ex_get_node")

    nics = d.ex_list_nics(node)
    check(len(nics) == 1, f"one NIC: {nics}")
    check(nics[0].ip_address == node.private_ips[0], f"NIC address: {nics[0].ip_address}")
    check(nics[0].is_default is True, "the only NIC is the default")
    check(nics[0].gateway == "10.1.1.1" and nics[0].net_mask == "255.255.255.0", "NIC gateway and mask")
    networks = {n.id: n for n in d.ex_list_networks()}
    check(nics[0].network_id in networks, "the NIC's network is listed")
    net = networks[nics[0].network_id]
    check(net.zoneid == zone.id and net.extra["type"] == "Isolated", f"the zone's isolated network: {net.extra}")
    # Libcloud turns every extra field into a string (RESOURCE_EXTRA_ATTRIBUTES_MAP).
    check(net.networkofferingid and net.extra["can_use_for_deploy"] == "True", f"network offering: {net.networkofferingid}")

    volumes = d.list_volumes(node=node)
    check(len(volumes) == 1, f"one volume: {[v.name for v in volumes]}")
    root = volumes[0]
    check(root.extra["volume_type"] == "ROOT", f"ROOT volume: {root.extra}")
    check(root.size == 3 * 1024**3, f"ROOT is the template's size: {root.size}")
    check(root.state == StorageVolumeState.INUSE, f"an attached Ready volume is in use: {root.state}")
    check(root.extra["instance_id"] == node.id, f"attached to the node: {root.extra}")

    check(d.ex_stop(node) == "Stopped", "ex_stop answers the stopped state")
    check({n.id: n for n in d.list_nodes()}[node.id].state == NodeState.STOPPED, "listed as stopped")
    try:
        d.reboot_node(node)
        raise AssertionError("rebooting a stopped node must fail")
    except Exception as e:
        check("in state Stopped" in str(e), f"reboot of a stopped node refused: {e}")
    check(d.ex_start(node) == "Running", "ex_start answers the running state")
    check(d.reboot_node(node) is True, "reboot_node")
    check({n.id: n for n in d.list_nodes()}[node.id].state == NodeState.RUNNING, "running after reboot")
    print(f"node: deployed, listed, stopped, started, rebooted ({node.private_ips[0]})")
    return node


def addresses_and_rules(d, zone, node):
    before = {a.id for a in d.ex_list_public_ips()}
    check(len(before) == 1, f"the source NAT address only: {before}")
    address = d.ex_allocate_public_ip(location=zone)
    check(address.address.startswith("127.10."), f"a loopback public address: {address.address}")
    listed = {a.id: a for a in d.ex_list_public_ips()}
    check(set(listed) == before | {address.id}, "the new address is listed")
    check(listed[address.id].address == address.address, "listed address")

    rule = d.ex_create_port_forwarding_rule(node, address, 22, 2222, "tcp")
    check(rule.public_port == 2222 and rule.private_port == 22, "rule ports")
    check(address.address in node.public_ips, "the node has the forwarded address")
    rules = d.ex_list_port_forwarding_rules()
    check(len(rules) == 1, f"one rule listed: {rules}")
    check(rules[0].id == rule.id, "the listed rule is the created one")
    # Ports are strings in CloudStack's FirewallRuleResponse (startPort is a
    # String: api/.../response/FirewallRuleResponse.java); Libcloud passes
    # them through as they come.
    check(str(rules[0].public_port) == "2222" and str(rules[0].private_port) == "22", "listed ports")
    check(rules[0].address.address == address.address and rules[0].node.id == node.id, "listed rule targets")
    check(rules[0].protocol == "tcp", f"listed protocol: {rules[0].protocol}")
    by_ip = d.ex_list_port_forwarding_rules(ipaddress_id=address.id)
    check([r.id for r in by_ip] == [rule.id], "rules by address")
    listed_node = {n.id: n for n in d.list_nodes()}[node.id]
    check([r.id for r in listed_node.extra["port_forwarding_rules"]] == [rule.id], "list_nodes shows the rule")
    check(address.address in listed_node.public_ips, "list_nodes shows the forwarded address")

    check(d.ex_delete_port_forwarding_rule(node, rule) is True, "rule deleted")
    check(d.ex_list_port_forwarding_rules() == [], "no rule left")

    # IP forwarding (static NAT) rules need static NAT on the address first
    # (RulesManagerImpl.createStaticNatRule: "Can't do static nat on ip
    # address", a NetworkRuleConflictException, 537).
    try:
        d.ex_create_ip_forwarding_rule(node, address, "TCP", 80)
        raise AssertionError("an ip forwarding rule without static NAT must fail")
    except ProviderError as e:
        check(e.http_code == 537 and "Can't do static nat on ip address" in e.value, f"{e.http_code} {e.value}")
    # Libcloud has no method for enableStaticNat/disableStaticNat: its own
    # request call sends them.
    d._sync_request("enableStaticNat", params={"ipaddressid": address.id, "virtualmachineid": node.id})
    nat = d.ex_create_ip_forwarding_rule(node, address, "TCP", 80, 81)
    listed = d.ex_list_ip_forwarding_rules()
    check([r.id for r in listed] == [nat.id], f"ip forwarding rules: {listed}")
    check(listed[0].start_port == 80 and listed[0].end_port == 81, "ip forwarding ports")
    check(listed[0].address.address == address.address and listed[0].node.id == node.id, "ip forwarding targets")
    listed_node = {n.id: n for n in d.list_nodes()}[node.id]
    check(address.address in listed_node.public_ips, "a static NAT address is the node's public address")
    check([r.id for r in listed_node.extra["ip_forwarding_rules"]] == [nat.id], "list_nodes shows the ip forwarding rule")
    check(d.ex_delete_ip_forwarding_rule(node, nat) is True, "ip forwarding rule deleted")
    check(d.ex_list_ip_forwarding_rules() == [], "no ip forwarding rule left")
    d._async_request("disableStaticNat", params={"ipaddressid": address.id})
    check(d.ex_release_public_ip(address) is True, "address released")
    check({a.id for a in d.ex_list_public_ips()} == before, "only the source NAT address left")
    print(f"addresses and rules: {address.address}:2222 -> 22, static NAT 80-81, then removed")


def destroy(d, node):
    check(d.destroy_node(node) is True, "destroy_node")
    listed = {n.id: n for n in d.list_nodes()}
    # A destroyed VM stays listed (to an admin) until it is expunged.
    check(node.id in listed and listed[node.id].state == NodeState.TERMINATED, "destroyed node is terminated")
    check(d.list_volumes(node=node)[0].extra["volume_type"] == "ROOT", "the ROOT volume stays until expunge")
    other = d.create_node(name="lc-gone", size=d.list_sizes()[0], image=d.list_images()[0],
                          location=d.list_locations()[1], ex_start_vm=True)
    check(d.destroy_node(other, ex_expunge=True) is True, "destroy_node with expunge")
    check(other.id not in {n.id for n in d.list_nodes()}, "an expunged node is gone")
    check(d.list_volumes(node=other) == [], "its ROOT volume went with it")
    print("destroy: destroyed and expunged")


def basic_zone(d, image, size):
    """A node in the Basic zone, behind the `default` security group."""
    zone = {z.name: z for z in d.list_locations()}["Sim-Basic"]
    images = [i for i in d.list_images(location=zone) if i.id == image.id]
    check(len(images) == 1, "the template is in the Basic zone too")
    node = d.create_node(
        name="lc-basic", size=size, image=images[0], location=zone,
        ex_security_groups=["default"], ex_start_vm=True,
    )
    check(node.state == NodeState.RUNNING, f"basic node runs: {node.state}")
    check(node.extra["security_group"] == ["default"], f"security groups: {node.extra['security_group']}")
    groups = d.ex_list_security_groups(virtualmachineid=node.id)
    check([g["name"] for g in groups] == ["default"], f"the node's groups: {groups}")
    check(node.id in groups[0]["virtualmachineids"], "the group lists the node")
    check(d.ex_list_public_ips() != [] and all(a.virtualmachine_id is None for a in d.ex_list_public_ips()),
          "a Basic zone node takes no public address")
    check(d.destroy_node(node, ex_expunge=True) is True, "basic node expunged")
    try:
        d.ex_list_security_groups(virtualmachineid=node.id)
        raise AssertionError("the groups of a node that is gone must be refused")
    except ProviderError as e:
        # QueryManagerImpl.searchForSecurityGroupsInternal: "Unable to list
        # network groups for virtual machine instance ...; instance not found."
        check(e.http_code == 431 and "instance not found" in e.value, f"{e.http_code} {e.value}")
    print("basic zone: node behind the default security group, listed by VM, expunged")


def project(d):
    """The simulator runs with `--project team` (tests/cli/sim.rs)."""
    projects = {p.name: p for p in d.ex_list_projects()}
    check("team" in projects, f"projects: {sorted(projects)}")
    team = projects["team"]
    check(team.extra["state"] == "Active", f"project state: {team.extra}")
    check(team.extra["domain"] == "ROOT", f"project domain: {team.extra}")

    kp = d.create_key_pair("lc-team", projectid=team.id)
    check(kp.name == "lc-team", "a key pair in the project")
    in_project = [k.name for k in d.list_key_pairs(projectid=team.id)]
    check(in_project == ["lc-team"], f"the project's key pairs: {in_project}")
    check("lc-team" not in [k.name for k in d.list_key_pairs()], "not among the account's own")
    d.delete_key_pair(kp, projectid=team.id)
    check(d.list_key_pairs(projectid=team.id) == [], "deleted from the project")

    networks = d.ex_list_networks(project=team)
    own = [n for n in networks if n.extra["project_id"] == team.id]
    check(len(own) == 1 and own[0].extra["type"] == "Isolated", f"the project's network: {[n.name for n in networks]}")
    check(d.list_nodes(project=team) == [], "no node in the project")
    # Libcloud 3.9's create_node takes `project` but never sends projectid
    # (its _create_args_to_params call leaves it out), so a node cannot be
    # deployed into a project through it.
    print(f"project: {team.name} listed, its key pair and network scoped to it")


def wrong_secret():
    bad = driver("not-the-secret")
    try:
        bad.list_locations()
        raise AssertionError("a wrong secret must be refused")
    except InvalidCredsError:
        # Libcloud raises this for HTTP 401 only (common/cloudstack.py).
        check(True, "401 for a wrong secret")
    print("wrong secret: refused with 401")


def main():
    started = time.monotonic()
    d = driver(os.environ["CLOUDSTACK_SECRET"])
    zone, image, size = catalogue(d)
    key = key_pairs(d)
    node = node_life(d, zone, image, size, key)
    addresses_and_rules(d, zone, node)
    destroy(d, node)
    basic_zone(d, image, size)
    d.delete_key_pair(key)
    check(d.list_key_pairs() == [], "no key pair left")
    project(d)
    wrong_secret()
    print(f"ok ({checks} checks, {time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)
