#!/usr/bin/env python3
"""A hostile CloudStack endpoint on loopback, for box's hardening tests and
benches/hostile_endpoint.sh. Every request to /client/api gets the chosen
misbehaviour; the server listens only on 127.0.0.1 and prints
`listening on http://127.0.0.1:PORT/client/api` once it is ready.

    hostile_endpoint.py MODE [--upstream URL] [--size-mb N]

Modes:
  endless        200, chunked, 64 KB chunks of a JSON list forever
  huge-length    200 announcing a 1 TB Content-Length, then data forever
  drip           200, chunked, then one byte per second forever
  slow-headers   the status line and headers, one byte per second, forever
  invalid-json   200 with a truncated JSON body
  http-500       500 with an HTML page, on every request
  big-json       a valid listVirtualMachines answer of about --size-mb MB
  job-never-finishes
                 proxies every call to --upstream (cloudstack-sim), except
                 that job polls (queryAsyncJobResult, and every job that
                 listAsyncJobs lists) answer "pending" forever
  job-flaky      the same, but of every five polls four answer HTTP 500
"""

import argparse
import http.client
import json
import socketserver
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 64 * 1024
ENTRY_LEN = 3200


def vm_entry(i):
    """One listVirtualMachines item of about 4 KB, shaped like a real one."""
    nic = {
        "id": f"nic-{i:08d}",
        "networkid": "net-0001",
        "networkname": "box-network",
        "netmask": "255.255.255.0",
        "gateway": "10.1.1.1",
        "ipaddress": f"10.1.{i // 250 % 250}.{i % 250 + 2}",
        "isdefault": True,
        "macaddress": f"02:00:{i >> 24 & 255:02x}:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
        "traffictype": "Guest",
        "type": "Isolated",
        "broadcasturi": "vlan://100",
        "isolationuri": "vlan://100",
        "extradhcpoption": [],
        "secondaryip": [],
    }
    vm = {
        "id": f"vm-{i:08d}-0000-0000-0000-000000000000",
        "name": f"project-machine-{i:08d}",
        "displayname": f"project-machine-{i:08d}",
        "account": "admin",
        "domainid": "dom-0001",
        "domain": "ROOT",
        "created": "2024-05-01T10:00:00+0000",
        "state": "Running",
        "haenable": False,
        "zoneid": "zone-0001",
        "zonename": "Sim-Advanced",
        "templateid": "tpl-0001",
        "templatename": "Debian 12",
        "templatedisplaytext": "Debian 12 generic cloud image",
        "passwordenabled": False,
        "serviceofferingid": "so-0001",
        "serviceofferingname": "Small Instance",
        "cpunumber": 1,
        "cpuspeed": 1000,
        "memory": 1024,
        "cpuused": "1.5%",
        "networkkbsread": 1234,
        "networkkbswrite": 5678,
        "diskkbsread": 91011,
        "diskkbswrite": 121314,
        "guestosid": "os-0001",
        "rootdeviceid": 0,
        "rootdevicetype": "ROOT",
        "securitygroup": [],
        "nic": [nic, dict(nic, id=f"nic-{i:08d}-2", isdefault=False, networkname="box-private")],
        "hypervisor": "KVM",
        "details": {"rootDiskController": "virtio", "dataDiskController": "virtio"},
        "affinitygroup": [],
        "displayvm": True,
        "isdynamicallyscalable": False,
        "ostypeid": "os-0001",
        "tags": [
            {"key": "box:env", "value": "0123456789abcdef", "resourcetype": "UserVm",
             "resourceid": f"vm-{i:08d}", "account": "admin", "domain": "ROOT"},
            {"key": "box:machine", "value": f"machine-{i}", "resourcetype": "UserVm",
             "resourceid": f"vm-{i:08d}", "account": "admin", "domain": "ROOT"},
            {"key": "box:hostkey", "value": "ssh-ed25519 " + "A" * 68, "resourcetype": "UserVm",
             "resourceid": f"vm-{i:08d}", "account": "admin", "domain": "ROOT"},
        ],
        "userdata": "I2Nsb3VkLWNvbmZpZwo=" * 50,
        "keypairs": "box-project-key",
    }
    # Padded to one length, so a whole answer's length is known up front.
    return json.dumps(vm, separators=(",", ":")).ljust(ENTRY_LEN)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hostile"

    def log_message(self, *args):
        pass

    def params(self):
        query = urllib.parse.urlsplit(self.path).query
        body = b""
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            body = self.rfile.read(length)
        pairs = urllib.parse.parse_qsl(query) + urllib.parse.parse_qsl(body.decode("utf-8", "replace"))
        return dict(pairs), body

    def do_GET(self):
        self.handle_api()

    def do_POST(self):
        self.handle_api()

    def handle_api(self):
        try:
            getattr(self, "mode_" + self.server.mode.replace("-", "_"))()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def send_fixed(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def mode_endless(self):
        self.params()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        item = b'{"id":"z","name":"' + b"x" * 100 + b'"},'
        data = (item * (CHUNK // len(item) + 1))[:CHUNK]
        frame = b"%x\r\n" % len(data) + data + b"\r\n"
        head = b'{"listzonesresponse":{"count":1,"zone":['
        self.wfile.write(b"%x\r\n" % len(head) + head + b"\r\n")
        while True:
            self.wfile.write(frame)

    def mode_huge_length(self):
        self.params()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(1 << 40))
        self.end_headers()
        data = b" " * CHUNK
        while True:
            self.wfile.write(data)

    def mode_drip(self):
        self.params()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        while True:
            self.wfile.write(b"1\r\n \r\n")
            self.wfile.flush()
            time.sleep(1)

    def mode_slow_headers(self):
        self.params()
        self.close_connection = True
        header = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        i = 0
        while True:
            # Never the blank line that ends the headers.
            self.wfile.write(header[i % len(header):i % len(header) + 1] if i < len(header) else b"X")
            self.wfile.flush()
            i += 1
            time.sleep(1)

    def mode_invalid_json(self):
        self.params()
        self.send_fixed(200, "application/json", b'{"listzonesresponse":{"count":1,"zone":[{"id":"z-1","name":')

    def mode_http_500(self):
        self.params()
        self.send_fixed(500, "text/html", b"<html><body><h1>500 Internal Server Error</h1></body></html>")

    def mode_big_json(self):
        params, _ = self.params()
        command = params.get("command", "listVirtualMachines").lower()
        entry_len = ENTRY_LEN
        n = max(1, self.server.size_mb * 1024 * 1024 // (entry_len + 1))
        head = ('{"%sresponse":{"count":%d,"virtualmachine":[' % (command, n)).encode()
        tail = b"]}}"
        # Every entry has the same length, so the total is known up front.
        total = len(head) + n * entry_len + (n - 1) + len(tail)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(total))
        self.end_headers()
        self.wfile.write(head)
        buf = []
        for i in range(n):
            buf.append(vm_entry(i))
            if len(buf) == 256 or i == n - 1:
                text = ",".join(buf)
                if i >= 256:
                    text = "," + text
                self.wfile.write(text.encode())
                buf = []
        self.wfile.write(tail)
        self.wfile.flush()

    def mode_job_flaky(self):
        self.mode_job_never_finishes(flaky=True)

    def mode_job_never_finishes(self, flaky=False):
        params, body = self.params()
        poll = params.get("command") in ("queryAsyncJobResult", "listAsyncJobs")
        if poll and flaky:
            with self.server.lock:
                self.server.polls += 1
                failing = self.server.polls % 5 != 1
            if failing:
                self.send_fixed(500, "text/html", b"<html>busy</html>")
                return
        if params.get("command") == "queryAsyncJobResult":
            jobid = params.get("jobid", "")
            answer = {"queryasyncjobresultresponse": {
                "jobid": jobid, "jobstatus": 0, "jobprocstatus": 0, "jobresultcode": 0,
                "cmd": "org.apache.cloudstack.api.command.user.vm.DeployVMCmd"}}
            self.send_fixed(200, "application/json", json.dumps(answer).encode())
            return
        up = urllib.parse.urlsplit(self.server.upstream)
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        query = urllib.parse.urlsplit(self.path).query
        path = up.path + ("?" + query if query else "")
        headers = {}
        if self.headers.get("Content-Type"):
            headers["Content-Type"] = self.headers["Content-Type"]
        conn.request(self.command, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        if params.get("command") == "listAsyncJobs" and resp.status == 200:
            # The same jobs seen through the list never finish either.
            answer = json.loads(data)
            for job in answer.get("listasyncjobsresponse", {}).get("asyncjobs", []):
                job["jobstatus"] = 0
                job["jobresultcode"] = 0
                job.pop("jobresult", None)
                job.pop("jobresulttype", None)
            data = json.dumps(answer).encode()
        self.send_fixed(resp.status, resp.getheader("Content-Type", "application/json"), data)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["endless", "huge-length", "drip", "slow-headers", "invalid-json",
                                         "http-500", "big-json", "job-never-finishes", "job-flaky"])
    parser.add_argument("--upstream", help="the simulator to proxy to (job-never-finishes)")
    parser.add_argument("--size-mb", type=int, default=200, help="body size for big-json")
    args = parser.parse_args()
    if args.mode in ("job-never-finishes", "job-flaky"):
        if not args.upstream:
            parser.error(f"{args.mode} needs --upstream")
        host = urllib.parse.urlsplit(args.upstream).hostname
        if not (host == "localhost" or host == "::1" or host.startswith("127.")):
            parser.error("--upstream must be on loopback")
    server = Server(("127.0.0.1", 0), Handler)
    server.mode = args.mode
    server.upstream = args.upstream
    server.size_mb = args.size_mb
    server.lock = threading.Lock()
    server.polls = 0
    print(f"listening on http://127.0.0.1:{server.server_address[1]}/client/api", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
