#!/usr/bin/env python3
"""Drives cloudstack-sim with the third-party `cs` client, unchanged.

Proof that the simulator is faithful: if `cs` (written against real
clouds) works against it, and the raw answers have the real shapes, a
client that passes against the simulator has a fair chance against a
cloud. Run by tests/cli/sim.rs; by hand:

    CLOUDSTACK_ENDPOINT=http://127.0.0.1:PORT/client/api \
    CLOUDSTACK_KEY=... CLOUDSTACK_SECRET=... python3 tests/cs_conformance.py

The secret comes from the environment (cs's own variable), never from
the command line. Prints one line per check group and `ok` at the end.
"""

import base64
import os
import sys
from datetime import datetime, timedelta, timezone

import requests
from cs import CloudStack, CloudStackApiException, read_config
from cs.client import cs_encode

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


def api_error(fn, code, *, contains=None, **kwargs):
    """Calls fn(**kwargs) and checks it fails with `code`; returns the error body."""
    try:
        fn(**kwargs)
    except CloudStackApiException as e:
        check(e.response.status_code == code, f"HTTP {code} expected, got {e.response.status_code}: {e.error}")
        check(e.error.get("errorcode") == code, f"errorcode {code} expected in {e.error}")
        check(isinstance(e.error.get("cserrorcode"), int), f"cserrorcode in {e.error}")
        check(e.error.get("uuidList") == [], f"uuidList in {e.error}")
        if contains:
            check(contains in e.error.get("errortext", ""), f"`{contains}` expected in {e.error}")
        return e.error
    raise AssertionError(f"error {code} expected, the call succeeded")


def job_error(fn, **kwargs):
    try:
        fn(**kwargs)
    except CloudStackApiException as e:
        check(e.args[0] == "Job failure", f"a job failure expected, got {e}")
        return e.error
    raise AssertionError("a failed job expected, the call succeeded")


def raw(config, params, method="get"):
    """A request signed by hand, to look at status and body as sent."""
    params = dict(params)
    params["apiKey"] = config["key"]
    params["response"] = "json"
    query = "&".join(f"{k}={cs_encode(v)}" for k, v in sorted(params.items()))
    import hashlib
    import hmac

    digest = hmac.new(config["secret"].encode(), query.lower().encode(), hashlib.sha1).digest()
    params["signature"] = base64.b64encode(digest).decode()
    if method == "get":
        return requests.get(config["endpoint"], params=params, timeout=10)
    return requests.post(config["endpoint"], data=params, timeout=10)


def main():
    config = dict(read_config(), poll_interval=0.05)
    cs = CloudStack(**config, fetch_result=True)
    post = CloudStack(**dict(config, method="post"), fetch_result=True)
    nowait = CloudStack(**config)

    # -- catalogue ---------------------------------------------------------
    zones = cs.listZones()["zone"]
    by_type = {z["networktype"]: z for z in zones}
    check(set(by_type) == {"Basic", "Advanced"}, f"one Basic and one Advanced zone: {zones}")
    basic, adv = by_type["Basic"], by_type["Advanced"]
    check(basic["securitygroupsenabled"] is True, "the Basic zone has security groups")
    check(adv["securitygroupsenabled"] is False, "the Advanced zone has none")
    check(cs.listZones(id=adv["id"])["count"] == 1, "listZones by id")
    check(cs.listZones(name=basic["name"])["zone"][0]["id"] == basic["id"], "listZones by name")

    api_error(cs.listTemplates, 431, contains="missing parameter templatefilter")
    templates = cs.listTemplates(templatefilter="executable", zoneid=adv["id"])["template"]
    debian = [t for t in templates if t["name"] == "Debian 12"]
    check(len(debian) == 1, f"one Debian 12 template in the zone: {[t['name'] for t in templates]}")
    debian = debian[0]
    check(debian["isready"] is True and debian["zoneid"] == adv["id"], "the template is ready in the zone")
    check(cs.listTemplates(templatefilter="self") == {}, "no templates of our own: an empty list is {}")

    offerings = cs.listServiceOfferings()["serviceoffering"]
    check(len(offerings) >= 3, "several service offerings")
    small = min(offerings, key=lambda o: o["memory"])
    check(all(isinstance(o["cpunumber"], int) for o in offerings), "cpunumber is a number")
    check(cs.listDiskOfferings()["count"] >= 1, "disk offerings")
    nets = cs.listNetworks(zoneid=adv["id"])["network"]
    check(nets[0]["type"] == "Isolated", "the Advanced zone's guest network is isolated")
    snat = cs.listPublicIpAddresses(issourcenat=True)["publicipaddress"]
    check(len(snat) == 1 and snat[0]["associatednetworkid"] == nets[0]["id"], "the network has a source NAT IP")
    snat = snat[0]
    print("catalogue ok")

    # -- discovery ---------------------------------------------------------
    apis = {a["name"]: a for a in cs.listApis()["api"]}
    check(apis["deployVirtualMachine"]["isasync"] is True, "deployVirtualMachine is async")
    check(apis["listZones"]["isasync"] is False, "listZones is not")
    required = {p["name"] for p in apis["deployVirtualMachine"]["params"] if p["required"]}
    check(required == {"zoneid", "serviceofferingid", "templateid"}, f"deploy's required params: {required}")
    caps = cs.listCapabilities()["capability"]
    check("cloudstackversion" in caps, "listCapabilities")
    print("discovery ok")

    # -- key pairs ---------------------------------------------------------
    kp = cs.registerSSHKeyPair(name="conformance", publickey=PUBLIC_KEY)["keypair"]
    check(kp["fingerprint"] == FINGERPRINT, f"MD5 fingerprint like ssh-keygen: {kp['fingerprint']}")
    api_error(cs.registerSSHKeyPair, 431, contains="already exists", name="conformance", publickey=PUBLIC_KEY)
    api_error(cs.registerSSHKeyPair, 431, name="bad", publickey="ssh-rsa nope")
    made = cs.createSSHKeyPair(name="made")["keypair"]
    check("PRIVATE KEY" in made["privatekey"], "createSSHKeyPair answers the private key once")
    listed = cs.listSSHKeyPairs(name="made")["sshkeypair"][0]
    check("privatekey" not in listed, "lists never show a private key")
    check(cs.listSSHKeyPairs(fingerprint=FINGERPRINT)["sshkeypair"][0]["name"] == "conformance", "by fingerprint")
    for i in range(7):
        cs.createSSHKeyPair(name=f"page-{i}")
    page = cs.listSSHKeyPairs(page=2, pagesize=3)
    check(page["count"] == 9 and len(page["sshkeypair"]) == 3, f"count is the total over pages: {page.get('count')}")
    everything = cs.listSSHKeyPairs(fetch_list=True)
    check(len(everything) == 9, f"cs's own pagination sees all 9: {len(everything)}")
    api_error(cs.listSSHKeyPairs, 431, contains="500", page=1, pagesize=501)
    for i in range(7):
        check(cs.deleteSSHKeyPair(name=f"page-{i}")["success"] is True, "deleteSSHKeyPair")
    api_error(cs.deleteSSHKeyPair, 431, contains="does not exist", name="page-0")
    print("key pairs ok")

    # -- deploy, wait, tags ------------------------------------------------
    user_data = base64.b64encode(b"#cloud-config\nruncmd: [true]\n").decode()
    started = nowait.deployVirtualMachine(
        zoneid=adv["id"], templateid=debian["id"], serviceofferingid=small["id"],
        name="web-1", keypair="conformance", userdata=user_data,
    )
    check(set(started) == {"id", "jobid"}, f"an async create answers id and jobid only: {started}")
    job = nowait.queryAsyncJobResult(jobid=started["jobid"])
    check(job["jobstatus"] in (0, 1) and "jobresultcode" in job, f"job shape: {job}")
    if job["jobstatus"] == 0:
        check("jobresult" not in job, "a pending job has no result")
    vm = cs._jobresult(started["jobid"])["virtualmachine"]
    check(vm["id"] == started["id"] and vm["state"] == "Running", f"the job ends with the VM running: {vm['state']}")
    check(vm["keypair"] == "conformance", "the VM has the key pair")
    check(vm["nic"][0]["networkid"] == nets[0]["id"], "the VM is on the isolated network")
    done = nowait.queryAsyncJobResult(jobid=started["jobid"])
    check(done["jobstatus"] == 1 and done["jobresulttype"] == "object", "a finished job")
    check(done["jobinstanceid"] == vm["id"] and done["jobinstancetype"] == "VirtualMachine", "job instance")
    ud = cs.getVirtualMachineUserData(virtualmachineid=vm["id"])["virtualmachineuserdata"]
    check(ud["userdata"] == user_data, "user data kept")

    cs.createTags(resourceids=vm["id"], resourcetype="UserVm", tags=[{"key": "box-project", "value": "conf"}])
    tagged = cs.listVirtualMachines(tags=[{"key": "box-project", "value": "conf"}])
    check(tagged["count"] == 1 and tagged["virtualmachine"][0]["id"] == vm["id"], "list by tag")
    check(cs.listVirtualMachines(tags=[{"key": "box-project", "value": "other"}]) == {}, "other tag: {}")
    check(cs.listTags(resourceid=vm["id"])["tag"][0]["key"] == "box-project", "listTags")
    check(cs.listVirtualMachines(keyword="web")["count"] == 1, "keyword")
    api_error(cs.listVirtualMachines, 431, contains="parameter id", id="00000000-0000-4000-8000-000000000000")
    print("deploy and tags ok")

    # -- port forwarding, firewall, static NAT -------------------------------
    rule = cs.createPortForwardingRule(
        ipaddressid=snat["id"], privateport=22, publicport=2222, protocol="tcp", virtualmachineid=vm["id"],
    )["portforwardingrule"]
    check(rule["publicport"] == "2222" and rule["state"] == "Active", f"PF rule (ports are strings): {rule}")
    api_error(cs.createPortForwardingRule, 537, contains="conflicts with rule",
              ipaddressid=snat["id"], privateport=22, publicport=2220, publicendport=2230,
              privateendport=32, protocol="tcp", virtualmachineid=vm["id"])
    check(cs.listPortForwardingRules(ipaddressid=snat["id"])["count"] == 1, "listPortForwardingRules")
    check(cs.listFirewallRules(ipaddressid=snat["id"])["count"] == 1, "openfirewall made a firewall rule")
    api_error(cs.enableStaticNat, 431, ipaddressid=snat["id"], virtualmachineid=vm["id"])
    ip = cs.associateIpAddress(zoneid=adv["id"])["ipaddress"]
    check(ip["issourcenat"] is False and ip["state"] == "Allocated", "associateIpAddress")
    cs.createPortForwardingRule(ipaddressid=ip["id"], privateport=80, publicport=80, protocol="tcp", virtualmachineid=vm["id"])
    api_error(cs.enableStaticNat, 537, ipaddressid=ip["id"], virtualmachineid=vm["id"])
    ip2 = cs.associateIpAddress(zoneid=adv["id"])["ipaddress"]
    check(cs.enableStaticNat(ipaddressid=ip2["id"], virtualmachineid=vm["id"])["success"] is True, "static NAT")
    api_error(cs.createPortForwardingRule, 537, ipaddressid=ip2["id"], privateport=22, publicport=22,
              protocol="tcp", virtualmachineid=vm["id"])
    fw = cs.createFirewallRule(ipaddressid=ip2["id"], protocol="tcp", startport=22, endport=22, cidrlist="127.0.0.0/8")
    check(fw["firewallrule"]["startport"] == 22, "firewall rule ports are numbers")
    check(cs.listVirtualMachines(id=vm["id"])["virtualmachine"][0]["publicip"] == ip2["ipaddress"], "VM shows its NAT IP")
    api_error(cs.disassociateIpAddress, 431, id=snat["id"])
    check(cs.disassociateIpAddress(id=ip["id"])["success"] is True, "release an IP")
    check(cs.listPortForwardingRules(ipaddressid=snat["id"])["count"] == 1, "other rules stay")
    print("network rules ok")

    # -- life cycle ----------------------------------------------------------
    stopped = cs.stopVirtualMachine(id=vm["id"])["virtualmachine"]
    check(stopped["state"] == "Stopped", "stop")
    api_error(cs.rebootVirtualMachine, 431, id=vm["id"])
    snap = cs.createVMSnapshot(virtualmachineid=vm["id"], name="before")["vmsnapshot"]
    check(snap["state"] == "Ready", "VM snapshot")
    listed = cs.listVMSnapshot(virtualmachineid=vm["id"])
    check(listed["count"] == 1 and "vmSnapshot" in listed, f"listVMSnapshot uses vmSnapshot: {list(listed)}")
    reverted = cs.revertToVMSnapshot(vmsnapshotid=snap["id"])
    check(reverted["virtualmachine"]["state"] == "Stopped", "revert a disk snapshot")
    check(cs.deleteVMSnapshot(vmsnapshotid=snap["id"])["success"] is True, "delete VM snapshot")
    check(cs.startVirtualMachine(id=vm["id"])["virtualmachine"]["state"] == "Running", "start")

    other = cs.deployVirtualMachine(zoneid=adv["id"], templateid=debian["id"], serviceofferingid=small["id"], name="db-1")
    other = other["virtualmachine"]
    gone = cs.destroyVirtualMachine(id=other["id"])["virtualmachine"]
    check(gone["state"] == "Destroyed", "destroy without expunge")
    api_error(cs.deployVirtualMachine, 431, contains="already exists",
              zoneid=adv["id"], templateid=debian["id"], serviceofferingid=small["id"], name="db-1")
    check(cs.listVirtualMachines(id=other["id"])["virtualmachine"][0]["state"] == "Destroyed", "still listed")
    check(cs.expungeVirtualMachine(id=other["id"])["success"] is True, "expunge")
    check(cs.listVirtualMachines(id=other["id"]) == {}, "expunged: gone, the id still valid")
    cs.deployVirtualMachine(zoneid=adv["id"], templateid=debian["id"], serviceofferingid=small["id"],
                            name="db-1", startvm=False)
    check(cs.listVirtualMachines(name="db-1")["virtualmachine"][0]["state"] == "Stopped", "startvm=false")

    expunged = cs.destroyVirtualMachine(id=vm["id"], expunge=True)
    check(expunged["virtualmachine"]["state"] == "Expunging", "destroy with expunge")
    check(cs.listVirtualMachines(id=vm["id"]) == {}, "the VM is gone")
    check(cs.listPortForwardingRules(ipaddressid=snat["id"]) == {}, "its rules went with it")
    print("life cycle ok")

    # -- Basic zone and security groups --------------------------------------
    sg = cs.createSecurityGroup(name="web")["securitygroup"]
    auth = cs.authorizeSecurityGroupIngress(securitygroupid=sg["id"], protocol="tcp", startport=22, endport=22,
                                            cidrlist="0.0.0.0/0")
    check(auth["securitygroup"]["ingressrule"][0]["startport"] == 22, "ingress rule")
    bvm = cs.deployVirtualMachine(zoneid=basic["id"], templateid=debian["id"], serviceofferingid=small["id"],
                                  name="basic-1", securitygroupids=sg["id"])["virtualmachine"]
    check(bvm["securitygroup"][0]["id"] == sg["id"], "the VM has the group")
    check(bvm["nic"][0]["ipaddress"].startswith("127."), "a Basic-zone VM has a loopback address")
    api_error(cs.deleteSecurityGroup, 536, id=sg["id"])
    default = cs.listSecurityGroups(securitygroupname="default")["securitygroup"][0]
    api_error(cs.deleteSecurityGroup, 431, id=default["id"])
    api_error(cs.deployVirtualMachine, 431, contains="security group",
              zoneid=adv["id"], templateid=debian["id"], serviceofferingid=small["id"], securitygroupids=sg["id"])
    cs.destroyVirtualMachine(id=bvm["id"], expunge=True)
    check(cs.deleteSecurityGroup(id=sg["id"])["success"] is True, "delete an unused group")
    check(cs.listAffinityGroups() == {}, "no affinity groups yet")
    print("basic zone ok")

    # -- strictness at the edges ---------------------------------------------
    big = base64.b64encode(os.urandom(6000)).decode()
    api_error(cs.deployVirtualMachine, 431, contains="too long",
              zoneid=adv["id"], templateid=debian["id"], serviceofferingid=small["id"], userdata=big)
    big_vm = post.deployVirtualMachine(zoneid=adv["id"], templateid=debian["id"], serviceofferingid=small["id"],
                                       name="big-ud", userdata=big)
    check(big_vm["virtualmachine"]["state"] == "Running", "POST takes longer user data")
    api_error(cs.deployVirtualMachine, 431, contains="missing parameter zoneid",
              templateid=debian["id"], serviceofferingid=small["id"])
    api_error(cs.listSSHKeyPairs, 431, contains="parameter page", page="one")

    r = raw(config, {"command": "noSuchCommand"})
    check(r.status_code == 432 and r.json()["errorresponse"]["errorcode"] == 432, f"unknown command: {r.text}")
    r = raw(config, {"command": "listzones"})
    check(r.status_code == 432, "command names are case-sensitive")
    r = raw(dict(config, secret="wrong"), {"command": "listZones"})
    body = r.json()
    check(r.status_code == 401 and body["listzonesresponse"]["errorcode"] == 401, f"bad signature: {r.text}")
    check("signature" in body["listzonesresponse"]["errortext"], "the 401 text")
    past = (datetime.now(timezone.utc) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S%z")
    r = raw(config, {"command": "listZones", "signatureVersion": "3", "expires": past})
    check(r.status_code == 401, "an expired request is refused")
    r = raw(config, {"command": "listZones", "signatureVersion": "3"})
    check(r.status_code == 401, "signatureVersion=3 needs expires")
    r = raw(config, {"command": "listZones"})
    check(r.status_code == 200 and r.headers["Content-Type"].startswith("application/json"), "no expiry: fine")
    r = raw(dict(config, key=config["key"].upper()), {"command": "listZones"})
    check(r.status_code == 200, "the API key is matched without case")
    r = raw(config, {"command": "listZones", "name": "Sim Basic+zone*/,:"}, method="post")
    check(r.status_code == 200 and r.json() == {"listzonesresponse": {}}, f"POST, odd characters: {r.text}")
    # cs leaves `~` unencoded where Java's URLEncoder writes %7E, so a real
    # server refuses such a request; so must the simulator.
    r = raw(config, {"command": "listZones", "name": "a~b"})
    check(r.status_code == 401, f"`~` signed unencoded is refused: {r.status_code}")
    r = requests.get(config["endpoint"].replace("/client/api", "/client/nope"), timeout=10)
    check(r.status_code == 404, "only /client/api")
    print("strictness ok")

    print(f"ok ({checks} checks)")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"FAILED after {checks} checks: {e}", file=sys.stderr)
        sys.exit(1)
