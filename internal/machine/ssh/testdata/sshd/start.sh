#!/bin/sh
# Each container gets host keys of its own, and the test's public key.
set -e
ssh-keygen -A -q
mkdir -p /root/.ssh /run/sshd
printf '%s\n' "$AUTHORIZED_KEY" > /root/.ssh/authorized_keys
chmod 700 /root/.ssh
chmod 600 /root/.ssh/authorized_keys
exec /usr/sbin/sshd -D -e
