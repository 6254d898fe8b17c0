#!/usr/bin/env bash
# A throwaway Postfix instance for benchmarks and interop tests, entirely under one directory:
#   postfix-instance.sh create DIR PORT hold           smtpd on 127.0.0.1:PORT, every message held
#   postfix-instance.sh create DIR PORT relay HOST:P   smtpd on 127.0.0.1:PORT relaying to [HOST]:P
#   ... create ... [tls CERT KEY]                      smtpd also offers STARTTLS with that PEM certificate
#                                                      and key (copied into DIR/etc), logging TLS sessions
#   postfix-instance.sh start|stop|flush|release|count DIR
# It never touches /etc/postfix or the system's mail service; it binds loopback only.
set -euo pipefail
cmd=${1:?usage}; dir=$(realpath -m "${2:?usage}")
pf() { postfix -c "$dir/etc" "$@"; }
case "$cmd" in
  create)
    port=${3:?port}; mode=${4:?hold|relay}; target=""
    shift 4
    if [ "$mode" = relay ]; then target=${1:?HOST:PORT}; shift; fi
    tls_cert=""; tls_key=""
    if [ "${1:-}" = tls ]; then tls_cert=${2:?certificate file}; tls_key=${3:?key file}; fi
    mkdir -p "$dir/etc" "$dir/queue" "$dir/data"
    cp /etc/postfix/dynamicmaps.cf "$dir/etc/" 2>/dev/null || true
    mkdir -p "$dir/etc/dynamicmaps.cf.d"
    cp /etc/postfix/postfix-files "$dir/etc/"; mkdir -p "$dir/etc/postfix-files.d"
    cat > "$dir/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-bench.localdomain
mydomain = localdomain
mydestination =
local_transport = error:no local delivery
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
smtpd_banner = \$myhostname ESMTP
default_process_limit = 100
smtp_dns_support_level = disabled
disable_dns_lookups = yes
smtputf8_enable = no
CF
    if [ -n "$tls_cert" ]; then
      install -m 0644 "$tls_cert" "$dir/etc/tls-cert.pem"
      install -m 0600 "$tls_key" "$dir/etc/tls-key.pem"
      cat >> "$dir/etc/main.cf" <<CF
smtpd_tls_cert_file = $dir/etc/tls-cert.pem
smtpd_tls_key_file = $dir/etc/tls-key.pem
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
CF
    fi
    if [ "$mode" = hold ]; then
      # Every accepted message goes to the hold queue: received, fsynced by cleanup, never delivered.
      echo "smtpd_client_restrictions = check_client_access static:HOLD" >> "$dir/etc/main.cf"
    else
      echo "relayhost = [${target%:*}]:${target##*:}" >> "$dir/etc/main.cf"
      echo "default_destination_concurrency_limit = 20" >> "$dir/etc/main.cf"
    fi
    cat > "$dir/etc/master.cf" <<MF
127.0.0.1:$port inet n - n - - smtpd
pickup    unix n - n 60 1 pickup
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
tlsmgr    unix - - n 1000? 1 tlsmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
verify    unix - - n - 1 verify
flush     unix n - n 1000? 0 flush
proxymap  unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp      unix - - n - - smtp
relay     unix - - n - - smtp
showq     unix n - n - - showq
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
local     unix - n n - - local
virtual   unix - n n - - virtual
lmtp      unix - - n - - lmtp
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
MF
    pf set-permissions >/dev/null 2>&1 || true
    pf check
    ;;
  start) pf start ;;
  stop) pf stop || true; pf abort 2>/dev/null || true ;;
  release) postsuper -c "$dir/etc" -H ALL ;;
  count) find "$dir/queue"/{incoming,active,deferred,hold,maildrop} -type f 2>/dev/null | wc -l ;;
  *) echo "unknown command $cmd" >&2; exit 2 ;;
esac
