// A global operator new replacement that counts allocations while switched on, so tests can
// prove a path does not allocate. Linked only into routing_test.
#pragma once

namespace ringmail::testing {

void start_counting_allocations();
// Stops counting and returns how many allocations happened since start.
int stop_counting_allocations();

}  // namespace ringmail::testing
