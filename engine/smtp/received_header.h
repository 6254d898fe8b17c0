// The Received: trace header the listener prepends to every accepted message (RFC 5321 §4.4,
// RFC 5322 §3.6.7), folded so no line reaches 998 octets, and the RFC 5322 date it ends with.
// Formatting only: what goes into the fields is decided by ServerSession.
#pragma once

#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/net.h"

namespace ringmail::smtp {

struct ReceivedFields {
  std::string_view helo;        // the EHLO/HELO name the client gave
  std::string_view peer;        // the client's address literal, "[192.0.2.1]" or "[IPv6:2001:db8::1]"
  std::string_view hostname;    // our name
  std::string_view protocol;    // "SMTP", "ESMTP", "ESMTPSA", "UTF8SMTPS", ... (RFC 3848, RFC 6531)
  std::string_view tls_version; // "TLSv1.3" when the message came over TLS, else empty
  std::string_view tls_cipher;  // "TLS_AES_256_GCM_SHA384" when over TLS, else empty
  std::string_view queue_id;    // the transaction's queue ID
  std::string_view recipient;   // the only recipient, or empty when there are several (no "for")
  WallTime date;                // when the message was received
};

// Appends
//   Received: from <helo> (<peer>)\r\n\tby <hostname> (ringmail) with <protocol> id <id>\r\n
//   \tfor <recipient>; <date>\r\n
// (without a recipient the ";" follows the id and the date gets a line of its own). Over TLS a line
// "\t(using <version> with cipher <cipher>)" follows the first one, as Postfix writes it.
void append_received_header(const ReceivedFields& fields, std::string& out);

// Appends an RFC 5322 date-time in UTC, "Tue, 3 Oct 2023 14:05:06 +0000".
void append_rfc5322_date(WallTime when, std::string& out);

// The address literal for a peer: "[192.0.2.1]", "[IPv6:2001:db8::1]"; IPv4-mapped IPv6 peers are
// shown as IPv4; an unset address is "[unknown]".
std::string peer_address_literal(const SocketAddress& address);

}  // namespace ringmail::smtp
