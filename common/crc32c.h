// CRC-32C (Castagnoli) for spool record framing: SSE4.2 instruction when the CPU has it,
// a table otherwise. Incremental: crc32c(crc32c(0, a), b) == crc32c(0, a+b).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ringmail {

uint32_t crc32c(uint32_t crc, const void* data, size_t len);

}  // namespace ringmail
