// Builds DNS response packets for the parser tests and the miss-cost benchmark: a header with
// an RCODE, the question, answer records and an optional SOA in the authority section. Names
// are written uncompressed, except where a test asks for a compression pointer.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ringmail::testing {

class DnsPacketBuilder {
 public:
  DnsPacketBuilder(std::string_view qname, uint16_t qtype, unsigned rcode = 0) : rcode_(rcode) {
    question_ = name(qname);
    put16(question_, qtype);
    put16(question_, 1);
  }
  DnsPacketBuilder& mx(std::string_view owner, uint32_t ttl, uint16_t pref, std::string_view host) {
    std::vector<uint8_t> rd;
    put16(rd, pref);
    append(rd, name(host));
    return record(answers_, an_, owner, 15, ttl, rd);
  }
  DnsPacketBuilder& a(std::string_view owner, uint32_t ttl, std::string_view ip) {
    std::vector<uint8_t> rd(4);
    inet_pton(AF_INET, std::string(ip).c_str(), rd.data());
    return record(answers_, an_, owner, 1, ttl, rd);
  }
  DnsPacketBuilder& aaaa(std::string_view owner, uint32_t ttl, std::string_view ip) {
    std::vector<uint8_t> rd(16);
    inet_pton(AF_INET6, std::string(ip).c_str(), rd.data());
    return record(answers_, an_, owner, 28, ttl, rd);
  }
  DnsPacketBuilder& cname(std::string_view owner, uint32_t ttl, std::string_view target) {
    return record(answers_, an_, owner, 5, ttl, name(target));
  }
  DnsPacketBuilder& soa(std::string_view zone, uint32_t ttl, uint32_t minimum) {
    std::vector<uint8_t> rd = name("ns." + std::string(zone));
    append(rd, name("hostmaster." + std::string(zone)));
    for (uint32_t v : {1u, 3600u, 600u, 86400u, minimum}) put32(rd, v);
    return record(authority_, ns_, zone, 6, ttl, rd);
  }
  // An MX whose exchange is a compression pointer to the question name (offset 12).
  DnsPacketBuilder& mx_pointing_to_qname(std::string_view owner, uint32_t ttl, uint16_t pref) {
    std::vector<uint8_t> rd;
    put16(rd, pref);
    rd.push_back(0xc0);
    rd.push_back(12);
    return record(answers_, an_, owner, 15, ttl, rd);
  }
  std::vector<uint8_t> build() const {
    std::vector<uint8_t> p;
    put16(p, 0x1234);
    put16(p, static_cast<uint16_t>(0x8180 | rcode_));  // QR RD RA
    put16(p, 1);
    put16(p, an_);
    put16(p, ns_);
    put16(p, 0);
    append(p, question_);
    append(p, answers_);
    append(p, authority_);
    return p;
  }

 private:
  static void put16(std::vector<uint8_t>& v, uint16_t x) {
    v.push_back(static_cast<uint8_t>(x >> 8));
    v.push_back(static_cast<uint8_t>(x));
  }
  static void put32(std::vector<uint8_t>& v, uint32_t x) {
    put16(v, static_cast<uint16_t>(x >> 16));
    put16(v, static_cast<uint16_t>(x));
  }
  static void append(std::vector<uint8_t>& v, const std::vector<uint8_t>& w) { v.insert(v.end(), w.begin(), w.end()); }
  static std::vector<uint8_t> name(std::string_view n) {
    std::vector<uint8_t> out;
    while (!n.empty() && n != ".") {
      size_t dot = n.find('.');
      std::string_view label = n.substr(0, dot);
      out.push_back(static_cast<uint8_t>(label.size()));
      out.insert(out.end(), label.begin(), label.end());
      n = dot == std::string_view::npos ? std::string_view() : n.substr(dot + 1);
    }
    out.push_back(0);
    return out;
  }
  DnsPacketBuilder& record(std::vector<uint8_t>& section, uint16_t& count, std::string_view owner, uint16_t type,
                           uint32_t ttl, const std::vector<uint8_t>& rdata) {
    append(section, name(owner));
    put16(section, type);
    put16(section, 1);
    put32(section, ttl);
    put16(section, static_cast<uint16_t>(rdata.size()));
    append(section, rdata);
    ++count;
    return *this;
  }

  unsigned rcode_;                  // response code in the header
  std::vector<uint8_t> question_;   // encoded question
  std::vector<uint8_t> answers_;    // encoded answer records
  std::vector<uint8_t> authority_;  // encoded authority records
  uint16_t an_ = 0, ns_ = 0;        // record counts
};

}  // namespace ringmail::testing
