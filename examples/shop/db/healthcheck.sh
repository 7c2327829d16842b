#!/bin/sh
# Healthy once the shop user logs in over TCP with the secret's password and
# its table exists: the start script's setup has finished. MYSQL_PWD keeps
# the password off the command line.
MYSQL_PWD=$(cat /run/secrets/db_password) exec mariadb --host=127.0.0.1 --user=shop --batch \
	--execute='SELECT COUNT(*) FROM visits' shop >/dev/null
