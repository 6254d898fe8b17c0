// One unit of outbound work as the engine hands it to an SMTP client session: the envelope of one
// message for one next hop (several recipients, up to the connector's cap), the body to send and
// the facts that decide which extensions it needs. Owned by the engine; the session only reads it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ringmail::smtp {

struct OutboundRecipient {
  std::string address;     // forward-path without <>
  std::string dsn_params;  // RFC 3461 RCPT parameters ("NOTIFY=FAILURE ORCPT=rfc822;a@b"); sent only if DSN is announced
};

struct OutboundTransaction {
  std::string mail_from;                     // reverse-path without <>; empty = null sender (DSNs)
  std::vector<OutboundRecipient> recipients; // in order; at most ClientConfig::max_recipients_per_transaction are sent
  std::string_view body;                     // unstuffed message bytes with CRLF line ends, without the final "."
  uint64_t size = 0;                         // octets for SIZE= (RFC 1870) and the SIZE check; normally body.size()
  bool body_8bit = false;                    // the body has octets above 127: needs 8BITMIME (BODY=8BITMIME)
  bool smtputf8 = false;                     // UTF-8 in addresses or headers: needs SMTPUTF8 (RFC 6531)
  std::string dsn_mail_params;               // RFC 3461 MAIL parameters ("RET=HDRS ENVID=x"); sent only if DSN is announced
};

}  // namespace ringmail::smtp
