// Unit tests of the raw answer parser (routing/dns/dns_records.cpp): TTLs, CNAME chains, null MX,
// RFC 2308 negative TTLs, RCODEs and malformed packets.
#include "routing/dns/dns_records.h"

#include <gtest/gtest.h>

#include "tests/routing/dns/dns_packet_builder.h"

namespace ringmail::routing::dns {
namespace {

using testing::DnsPacketBuilder;

DnsRecords parse(const DnsPacketBuilder& b, std::string_view qname, uint16_t qtype) {
  std::vector<uint8_t> p = b.build();
  return parse_answer(p.data(), static_cast<int>(p.size()), qname, qtype);
}

TEST(DnsRecordsTest, MxWithTheSmallestTtlOfTheRrset) {
  DnsPacketBuilder b("Example.Test", kTypeMx);
  b.mx("example.test", 600, 20, "Backup.Example.Test.").mx("example.test", 300, 10, "mx1.example.test");
  DnsRecords r = parse(b, "Example.Test.", kTypeMx);
  ASSERT_EQ(r.status, LookupStatus::kFound);
  EXPECT_EQ(r.final_name, "example.test");
  ASSERT_EQ(r.mx.size(), 2u);
  EXPECT_EQ(r.mx[0].host, "backup.example.test");
  EXPECT_EQ(r.mx[0].preference, 20);
  EXPECT_EQ(r.ttl, 300u);
}

TEST(DnsRecordsTest, NullMxHasAnEmptyHost) {
  DnsPacketBuilder b("nullmx.test", kTypeMx);
  b.mx("nullmx.test", 300, 0, ".");
  DnsRecords r = parse(b, "nullmx.test", kTypeMx);
  ASSERT_EQ(r.mx.size(), 1u);
  EXPECT_EQ(r.mx[0].host, "");
}

// A server may put any octets in a label. MX records whose exchange is not a host name (a space,
// a control octet, which c-ares escapes as \DDD) are skipped, as Postfix does; if none is left the
// answer is a temporary failure, never a reason to fall back to the domain's own address (RFC 5321
// §5.1 implicit MX). Found by tests/fuzz/dns_answer_fuzz.
TEST(DnsRecordsTest, MxRecordsNamingNoHostAreSkipped) {
  DnsPacketBuilder b("odd.test", kTypeMx);
  b.mx("odd.test", 300, 10, "bad host.odd.test")
      .mx("odd.test", 300, 20, "MX1.odd.test")
      .mx("odd.test", 300, 30, std::string("mx\x01<>.odd.test"));
  DnsRecords r = parse(b, "odd.test", kTypeMx);
  EXPECT_EQ(r.status, LookupStatus::kFound);
  ASSERT_EQ(r.mx.size(), 1u);
  EXPECT_EQ(r.mx[0].host, "mx1.odd.test");

  DnsPacketBuilder only_bad("odd.test", kTypeMx);
  only_bad.mx("odd.test", 300, 10, "bad host.odd.test").mx("odd.test", 300, 20, std::string("a\0b.odd.test", 12));
  r = parse(only_bad, "odd.test", kTypeMx);
  EXPECT_EQ(r.status, LookupStatus::kTemporary);
  EXPECT_TRUE(r.mx.empty());
  EXPECT_EQ(r.error, "2 MX records naming no valid host name");
}

TEST(DnsRecordsTest, CompressedNamesAreExpanded) {
  DnsPacketBuilder b("self.test", kTypeMx);
  b.mx_pointing_to_qname("self.test", 60, 5);
  DnsRecords r = parse(b, "self.test", kTypeMx);
  ASSERT_EQ(r.status, LookupStatus::kFound);
  EXPECT_EQ(r.mx[0].host, "self.test");
}

TEST(DnsRecordsTest, CnameChainIsFollowedAndItsTtlCounts) {
  DnsPacketBuilder b("alias.test", kTypeA);
  b.cname("alias.test", 30, "mid.test").cname("mid.test", 300, "host.test").a("host.test", 120, "192.0.2.1");
  DnsRecords r = parse(b, "alias.test", kTypeA);
  ASSERT_EQ(r.status, LookupStatus::kFound);
  EXPECT_EQ(r.final_name, "host.test");
  ASSERT_EQ(r.addresses.size(), 1u);
  EXPECT_EQ(r.addresses[0].host(), "192.0.2.1");
  EXPECT_EQ(r.ttl, 30u);
}

TEST(DnsRecordsTest, CnameWithoutTargetRecordsOrSoaMustBeFollowed) {
  DnsPacketBuilder b("alias.test", kTypeMx);
  b.cname("alias.test", 300, "elsewhere.example");
  DnsRecords r = parse(b, "alias.test", kTypeMx);
  EXPECT_EQ(r.status, LookupStatus::kCnameDangling);
  EXPECT_EQ(r.final_name, "elsewhere.example");
}

TEST(DnsRecordsTest, CnameToNameWithoutMxIsNoDataAtTheTarget) {
  DnsPacketBuilder b("alias2.test", kTypeMx);
  b.cname("alias2.test", 300, "implicit.test").soa("test", 3600, 60);
  DnsRecords r = parse(b, "alias2.test", kTypeMx);
  EXPECT_EQ(r.status, LookupStatus::kNoData);
  EXPECT_EQ(r.final_name, "implicit.test");
}

TEST(DnsRecordsTest, NegativeTtlIsTheSmallerOfSoaTtlAndMinimum) {
  struct Case {
    unsigned rcode;
    uint32_t soa_ttl, minimum, want;
    LookupStatus status;
  } cases[] = {
      {3, 3600, 60, 60, LookupStatus::kNxDomain},
      {3, 30, 600, 30, LookupStatus::kNxDomain},
      {0, 3600, 120, 120, LookupStatus::kNoData},
  };
  for (const Case& c : cases) {
    DnsPacketBuilder b("x.test", kTypeMx, c.rcode);
    b.soa("test", c.soa_ttl, c.minimum);
    DnsRecords r = parse(b, "x.test", kTypeMx);
    EXPECT_EQ(r.status, c.status);
    EXPECT_TRUE(r.has_soa);
    EXPECT_EQ(r.ttl, c.want);
  }
}

TEST(DnsRecordsTest, NegativeWithoutSoaIsNotCacheable) {
  DnsRecords r = parse(DnsPacketBuilder("x.test", kTypeMx, 3), "x.test", kTypeMx);
  EXPECT_EQ(r.status, LookupStatus::kNxDomain);
  EXPECT_FALSE(r.has_soa);
}

TEST(DnsRecordsTest, ServerFailuresAreTemporary) {
  EXPECT_EQ(parse(DnsPacketBuilder("x.test", kTypeMx, 2), "x.test", kTypeMx).error, "SERVFAIL");
  EXPECT_EQ(parse(DnsPacketBuilder("x.test", kTypeMx, 5), "x.test", kTypeMx).error, "REFUSED");
  EXPECT_EQ(parse(DnsPacketBuilder("x.test", kTypeMx, 4), "x.test", kTypeMx).status, LookupStatus::kTemporary);
}

TEST(DnsRecordsTest, AaaaAndIgnoringOtherOwners) {
  DnsPacketBuilder b("h.test", kTypeAaaa);
  b.aaaa("h.test", 50, "2001:db8::1").aaaa("other.test", 10, "2001:db8::2");
  DnsRecords r = parse(b, "h.test", kTypeAaaa);
  ASSERT_EQ(r.addresses.size(), 1u);
  EXPECT_EQ(r.addresses[0].host(), "2001:db8::1");
  EXPECT_EQ(r.ttl, 50u);
}

TEST(DnsRecordsTest, TruncatedPacketsAreTemporaryNotCrashes) {
  DnsPacketBuilder b("example.test", kTypeMx);
  b.mx("example.test", 600, 10, "mx1.example.test");
  std::vector<uint8_t> p = b.build();
  for (size_t len = 0; len < p.size(); ++len) {
    DnsRecords r = parse_answer(p.data(), static_cast<int>(len), "example.test", kTypeMx);
    EXPECT_NE(r.status, LookupStatus::kFound) << len;
  }
}

}  // namespace
}  // namespace ringmail::routing::dns
