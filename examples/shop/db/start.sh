#!/bin/sh
# db's start: make the data directory on first start, run mariadbd, and
# (again on every start, so a changed db_password secret takes effect) give
# the shop user the secret's password. The password goes to the server
# through a pipe, never into a file or a command line.
set -eu
secret=/run/secrets/db_password
[ -s "$secret" ] || { echo "db: $secret is missing or empty; give the db_password secret a value" >&2; exit 1; }
if [ ! -d /var/lib/mysql/mysql ]; then
	echo "db: first start: making the data directory"
	mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db --auth-root-authentication-method=socket >/dev/null
fi
mariadbd --user=mysql --datadir=/var/lib/mysql --bind-address=0.0.0.0 --skip-name-resolve &
pid=$!
# docker stop signals this shell (PID 1): pass it on to mariadbd.
trap 'kill -TERM $pid' TERM INT
i=0
until mariadb --user=root --execute="SELECT 1" >/dev/null 2>&1; do
	kill -0 $pid 2>/dev/null || { wait $pid; exit 1; }
	i=$((i + 1))
	[ $i -lt 120 ] || { echo "db: mariadbd did not answer within 60s" >&2; exit 1; }
	sleep 0.5
done
# Quote the password for SQL: double every backslash and single quote.
pw=$(sed -e "s/\\\\/\\\\\\\\/g" -e "s/'/''/g" "$secret")
printf '%s\n' \
	"CREATE DATABASE IF NOT EXISTS shop;" \
	"CREATE USER IF NOT EXISTS 'shop'@'%' IDENTIFIED BY '$pw';" \
	"ALTER USER 'shop'@'%' IDENTIFIED BY '$pw';" \
	"GRANT SELECT, INSERT ON shop.* TO 'shop'@'%';" \
	"CREATE TABLE IF NOT EXISTS shop.visits (id INT AUTO_INCREMENT PRIMARY KEY, replica VARCHAR(64) NOT NULL, at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);" |
	mariadb --user=root
unset pw
echo "db: ready"
# wait returns early when the trap runs: wait again until mariadbd is gone.
while :; do
	status=0
	wait $pid || status=$?
	kill -0 $pid 2>/dev/null || exit $status
done
