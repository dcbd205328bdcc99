// hw/kvm/kvm_abi.hpp: the KVM ioctls the KVM proof issues, with the request
// numbers the kernel expects.
//
// <linux/kvm.h> cannot be used as is from C++ for the CPUID ioctls. struct
// kvm_cpuid2 ends in a flexible array declared with __DECLARE_FLEX_ARRAY,
// which C++ compilers lay out with a one-byte empty struct in front of the
// array: sizeof(struct kvm_cpuid2) is 12 in C++ and 8 in C, and `entries`
// sits at offset 12 instead of 8. The size is encoded in the _IOWR/_IOW
// request number, so the header's KVM_GET_SUPPORTED_CPUID and KVM_SET_CPUID2
// are numbers the kernel does not know (EINVAL), and the entries would be
// read four bytes off. Here both structs are declared with C's layout and
// every request number is computed from them; kvm_test.cpp pins each number
// to the literal value a C program built against the kernel's header gets.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstddef>
#include <cstdint>

namespace ioas::hw::kvm_abi {

// struct kvm_cpuid2's fixed part, as C lays it out.
struct Cpuid2Header {
  std::uint32_t nent;
  std::uint32_t padding;
};
static_assert(sizeof(Cpuid2Header) == 8);

// A kvm_cpuid2 with room for kMaxEntries entries, entries at offset 8.
struct Cpuid2 {
  static constexpr std::uint32_t kMaxEntries = 256;
  Cpuid2Header hdr;
  kvm_cpuid_entry2 entries[kMaxEntries];
};
static_assert(offsetof(Cpuid2, entries) == 8);
static_assert(sizeof(kvm_cpuid_entry2) == 40);

inline constexpr unsigned long kGetApiVersion = _IO(KVMIO, 0x00);
inline constexpr unsigned long kCreateVm = _IO(KVMIO, 0x01);
inline constexpr unsigned long kGetVcpuMmapSize = _IO(KVMIO, 0x04);
inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, Cpuid2Header);
inline constexpr unsigned long kCreateVcpu = _IO(KVMIO, 0x41);
inline constexpr unsigned long kSetUserMemoryRegion = _IOW(KVMIO, 0x46, kvm_userspace_memory_region);
inline constexpr unsigned long kRun = _IO(KVMIO, 0x80);
inline constexpr unsigned long kGetRegs = _IOR(KVMIO, 0x81, kvm_regs);
inline constexpr unsigned long kSetRegs = _IOW(KVMIO, 0x82, kvm_regs);
inline constexpr unsigned long kGetSregs = _IOR(KVMIO, 0x83, kvm_sregs);
inline constexpr unsigned long kSetSregs = _IOW(KVMIO, 0x84, kvm_sregs);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, Cpuid2Header);

}  // namespace ioas::hw::kvm_abi
