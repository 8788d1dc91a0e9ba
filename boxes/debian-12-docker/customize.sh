#!/bin/sh
# debian-12-docker's changes to the image, run by base.sh's customize hook
# as `sh customize.sh ROOT` (outside the image: paths are under $root).
set -eu
root=$1

# The login user joins the docker group. box's cloud-init seed is the same
# for every box (and a group that does not exist would fail the user's
# creation on other boxes), so the image does it: after cloud-init's
# network stage has created the user, before sshd takes the first login.
# box's seed gives its login user the GECOS "box login user".
mkdir -p "$root/usr/local/sbin"
cat > "$root/usr/local/sbin/box-docker-group" <<'SH'
#!/bin/sh
getent passwd | awk -F: '$5 == "box login user" { print $1 }' | while read -r user; do
  usermod -a -G docker "$user"
done
SH
chmod 755 "$root/usr/local/sbin/box-docker-group"
cat > "$root/etc/systemd/system/box-docker-group.service" <<'UNIT'
[Unit]
Description=box: the login user joins the docker group
After=cloud-init.service
Before=ssh.service systemd-user-sessions.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/box-docker-group

[Install]
WantedBy=multi-user.target
UNIT

# A base image for builds with no registry: busybox-static imported into
# Docker as box/busybox:latest at first boot (dockerd cannot run while the
# image is built). The docker provisioner starts this unit and waits for it
# before it builds.
cat > "$root/usr/local/sbin/box-docker-images" <<'SH'
#!/bin/sh
set -eu
docker image inspect box/busybox:latest >/dev/null 2>&1 && exit 0
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/bin" "$dir/etc" "$dir/tmp" "$dir/www"
chmod 1777 "$dir/tmp"
cp /bin/busybox "$dir/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$dir/bin/$applet"
done
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$dir/etc/group"
tar -C "$dir" -c . | docker import -c 'CMD ["sh"]' -c 'ENV PATH=/bin' - box/busybox:latest >/dev/null
SH
chmod 755 "$root/usr/local/sbin/box-docker-images"
cat > "$root/etc/systemd/system/box-docker-images.service" <<'UNIT'
[Unit]
Description=box: the box/busybox base image in Docker
Requires=docker.service
After=docker.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/box-docker-images

[Install]
WantedBy=multi-user.target
UNIT

systemctl --root="$root" enable box-docker-group.service box-docker-images.service docker.service >/dev/null 2>&1
