#!/bin/sh
# Each container gets host keys of its own, and the test's public key for
# root, deploy and guest.
set -e
ssh-keygen -A -q
mkdir -p /run/sshd
for home in /root /home/deploy /home/guest; do
	mkdir -p "$home/.ssh"
	printf '%s\n' "$AUTHORIZED_KEY" > "$home/.ssh/authorized_keys"
	chmod 700 "$home/.ssh"
	chmod 600 "$home/.ssh/authorized_keys"
done
chown -R deploy:deploy /home/deploy/.ssh
chown -R guest:guest /home/guest/.ssh
exec /usr/sbin/sshd -D -e
