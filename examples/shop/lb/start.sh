#!/bin/sh
# lb's start: make a self-signed certificate (once per container: the key is
# made here and never leaves it), point nginx's resolver at the container's
# own DNS server, and run nginx in the foreground.
set -eu
tls=/etc/nginx/tls
if [ ! -s "$tls/cert.pem" ]; then
	mkdir -p "$tls"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
		-subj "/CN=${SHOP_TLS_NAME:-localhost}" \
		-addext "subjectAltName=DNS:${SHOP_TLS_NAME:-localhost},IP:127.0.0.1" \
		-keyout "$tls/key.pem" -out "$tls/cert.pem" 2>/dev/null
	chmod 600 "$tls/key.pem"
fi
# The DNS server is whatever the engine or berth put in resolv.conf:
# Docker's 127.0.0.11, or berth's agent on the network's gateway.
ns=$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf)
case "$ns" in
*:*) ns="[$ns]" ;;
"") echo "lb: no nameserver in /etc/resolv.conf" >&2; exit 1 ;;
esac
sed "s/@RESOLVER@/$ns/" /etc/nginx/nginx.conf.in >/etc/nginx/nginx.conf
exec nginx -g 'daemon off;'
