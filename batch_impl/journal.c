/* journal.c - durable jobs: an append-only journal of finished tasks and delivered batches.

   File: a 32-byte header (magic "BATCHJNL", version, kind, fingerprint, accumulator size, CRC32C
   of the header), then records: u32 payload length, u32 CRC32C of the payload, the payload. All
   integers little-endian. Records are appended under the journal's lock; on open the valid
   prefix is replayed into the job and anything after it (a record cut short by a crash, one
   whose CRC does not match, or zeros to the end of the file) is truncated. See "DURABLE JOBS" in the API part for the contract. */
#ifndef BATCH__JOURNAL_C
#define BATCH__JOURNAL_C
#ifndef BATCH_SINGLE_FILE
#  include "job.c"
#endif

#if !defined(BATCH_NO_JOURNAL) && (defined(__unix__) || defined(__APPLE__))
#  define BATCH__POSIX_IO 1
#  include <fcntl.h>
#  include <sys/file.h>   /* flock: the queue's lock */
#  include <sys/stat.h>
#endif
#if !defined(BATCH_NO_JOURNAL) && defined(_WIN32)
#  define BATCH__WIN32_IO 1
#  if defined(_MSC_VER)
#    pragma comment(lib, "advapi32.lib")   /* the private DACL (batch__wio_private_sd) */
#  endif
#endif

/* ---- CRC32C (Castagnoli, reflected 0x82F63B78), one table lookup per byte ------------------ */
static const uint32_t batch__crc32c_table[256] = {
    0x00000000u, 0xf26b8303u, 0xe13b70f7u, 0x1350f3f4u, 0xc79a971fu, 0x35f1141cu, 0x26a1e7e8u, 0xd4ca64ebu,
    0x8ad958cfu, 0x78b2dbccu, 0x6be22838u, 0x9989ab3bu, 0x4d43cfd0u, 0xbf284cd3u, 0xac78bf27u, 0x5e133c24u,
    0x105ec76fu, 0xe235446cu, 0xf165b798u, 0x030e349bu, 0xd7c45070u, 0x25afd373u, 0x36ff2087u, 0xc494a384u,
    0x9a879fa0u, 0x68ec1ca3u, 0x7bbcef57u, 0x89d76c54u, 0x5d1d08bfu, 0xaf768bbcu, 0xbc267848u, 0x4e4dfb4bu,
    0x20bd8edeu, 0xd2d60dddu, 0xc186fe29u, 0x33ed7d2au, 0xe72719c1u, 0x154c9ac2u, 0x061c6936u, 0xf477ea35u,
    0xaa64d611u, 0x580f5512u, 0x4b5fa6e6u, 0xb93425e5u, 0x6dfe410eu, 0x9f95c20du, 0x8cc531f9u, 0x7eaeb2fau,
    0x30e349b1u, 0xc288cab2u, 0xd1d83946u, 0x23b3ba45u, 0xf779deaeu, 0x05125dadu, 0x1642ae59u, 0xe4292d5au,
    0xba3a117eu, 0x4851927du, 0x5b016189u, 0xa96ae28au, 0x7da08661u, 0x8fcb0562u, 0x9c9bf696u, 0x6ef07595u,
    0x417b1dbcu, 0xb3109ebfu, 0xa0406d4bu, 0x522bee48u, 0x86e18aa3u, 0x748a09a0u, 0x67dafa54u, 0x95b17957u,
    0xcba24573u, 0x39c9c670u, 0x2a993584u, 0xd8f2b687u, 0x0c38d26cu, 0xfe53516fu, 0xed03a29bu, 0x1f682198u,
    0x5125dad3u, 0xa34e59d0u, 0xb01eaa24u, 0x42752927u, 0x96bf4dccu, 0x64d4cecfu, 0x77843d3bu, 0x85efbe38u,
    0xdbfc821cu, 0x2997011fu, 0x3ac7f2ebu, 0xc8ac71e8u, 0x1c661503u, 0xee0d9600u, 0xfd5d65f4u, 0x0f36e6f7u,
    0x61c69362u, 0x93ad1061u, 0x80fde395u, 0x72966096u, 0xa65c047du, 0x5437877eu, 0x4767748au, 0xb50cf789u,
    0xeb1fcbadu, 0x197448aeu, 0x0a24bb5au, 0xf84f3859u, 0x2c855cb2u, 0xdeeedfb1u, 0xcdbe2c45u, 0x3fd5af46u,
    0x7198540du, 0x83f3d70eu, 0x90a324fau, 0x62c8a7f9u, 0xb602c312u, 0x44694011u, 0x5739b3e5u, 0xa55230e6u,
    0xfb410cc2u, 0x092a8fc1u, 0x1a7a7c35u, 0xe811ff36u, 0x3cdb9bddu, 0xceb018deu, 0xdde0eb2au, 0x2f8b6829u,
    0x82f63b78u, 0x709db87bu, 0x63cd4b8fu, 0x91a6c88cu, 0x456cac67u, 0xb7072f64u, 0xa457dc90u, 0x563c5f93u,
    0x082f63b7u, 0xfa44e0b4u, 0xe9141340u, 0x1b7f9043u, 0xcfb5f4a8u, 0x3dde77abu, 0x2e8e845fu, 0xdce5075cu,
    0x92a8fc17u, 0x60c37f14u, 0x73938ce0u, 0x81f80fe3u, 0x55326b08u, 0xa759e80bu, 0xb4091bffu, 0x466298fcu,
    0x1871a4d8u, 0xea1a27dbu, 0xf94ad42fu, 0x0b21572cu, 0xdfeb33c7u, 0x2d80b0c4u, 0x3ed04330u, 0xccbbc033u,
    0xa24bb5a6u, 0x502036a5u, 0x4370c551u, 0xb11b4652u, 0x65d122b9u, 0x97baa1bau, 0x84ea524eu, 0x7681d14du,
    0x2892ed69u, 0xdaf96e6au, 0xc9a99d9eu, 0x3bc21e9du, 0xef087a76u, 0x1d63f975u, 0x0e330a81u, 0xfc588982u,
    0xb21572c9u, 0x407ef1cau, 0x532e023eu, 0xa145813du, 0x758fe5d6u, 0x87e466d5u, 0x94b49521u, 0x66df1622u,
    0x38cc2a06u, 0xcaa7a905u, 0xd9f75af1u, 0x2b9cd9f2u, 0xff56bd19u, 0x0d3d3e1au, 0x1e6dcdeeu, 0xec064eedu,
    0xc38d26c4u, 0x31e6a5c7u, 0x22b65633u, 0xd0ddd530u, 0x0417b1dbu, 0xf67c32d8u, 0xe52cc12cu, 0x1747422fu,
    0x49547e0bu, 0xbb3ffd08u, 0xa86f0efcu, 0x5a048dffu, 0x8ecee914u, 0x7ca56a17u, 0x6ff599e3u, 0x9d9e1ae0u,
    0xd3d3e1abu, 0x21b862a8u, 0x32e8915cu, 0xc083125fu, 0x144976b4u, 0xe622f5b7u, 0xf5720643u, 0x07198540u,
    0x590ab964u, 0xab613a67u, 0xb831c993u, 0x4a5a4a90u, 0x9e902e7bu, 0x6cfbad78u, 0x7fab5e8cu, 0x8dc0dd8fu,
    0xe330a81au, 0x115b2b19u, 0x020bd8edu, 0xf0605beeu, 0x24aa3f05u, 0xd6c1bc06u, 0xc5914ff2u, 0x37faccf1u,
    0x69e9f0d5u, 0x9b8273d6u, 0x88d28022u, 0x7ab90321u, 0xae7367cau, 0x5c18e4c9u, 0x4f48173du, 0xbd23943eu,
    0xf36e6f75u, 0x0105ec76u, 0x12551f82u, 0xe03e9c81u, 0x34f4f86au, 0xc69f7b69u, 0xd5cf889du, 0x27a40b9eu,
    0x79b737bau, 0x8bdcb4b9u, 0x988c474du, 0x6ae7c44eu, 0xbe2da0a5u, 0x4c4623a6u, 0x5f16d052u, 0xad7d5351u,
};

BATCH__PRIVATE uint32_t batch__crc32c_soft(uint32_t c, const unsigned char* p, size_t n) {
    for (size_t i = 0; i < n; i++) c = batch__crc32c_table[(c ^ p[i]) & 0xffu] ^ (c >> 8);
    return c;
}
#if defined(BATCH__X86_64_GNU)
/* SSE4.2's CRC32 instruction computes this very CRC, 8 bytes at a time: about 10x the table
   (a queue's cold open reads every record). Chosen at run time by CPUID. */
__attribute__((target("sse4.2"))) static uint32_t batch__crc32c_hw(uint32_t c, const unsigned char* p, size_t n) {
    uint64_t c64 = c;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = __builtin_ia32_crc32di(c64, v);
    }
    c = (uint32_t)c64;
    for (; n; n--, p++) c = __builtin_ia32_crc32qi(c, *p);
    return c;
}
static _Atomic int batch__crc_hw;   /* 0: not looked yet, 1: SSE4.2, 2: none (relaxed: idempotent) */
BATCH__PRIVATE uint32_t batch__crc32c(const void* data, size_t n) {
    int hw = atomic_load_explicit(&batch__crc_hw, memory_order_relaxed);
    if (!hw) {
        unsigned a, b, c, d;
        hw = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 20)) ? 1 : 2;
        atomic_store_explicit(&batch__crc_hw, hw, memory_order_relaxed);
    }
    const unsigned char* p = (const unsigned char*)data;
    return (hw == 1 ? batch__crc32c_hw(0xffffffffu, p, n) : batch__crc32c_soft(0xffffffffu, p, n)) ^ 0xffffffffu;
}
#else
BATCH__PRIVATE uint32_t batch__crc32c(const void* data, size_t n) {
    return batch__crc32c_soft(0xffffffffu, (const unsigned char*)data, n) ^ 0xffffffffu;
}
#endif

/* ---- little-endian fields ------------------------------------------------------------------ */
BATCH__PRIVATE void batch__put32(unsigned char* p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
BATCH__PRIVATE void batch__put64(unsigned char* p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
BATCH__PRIVATE uint32_t batch__get32(const unsigned char* p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
BATCH__PRIVATE uint64_t batch__get64(const unsigned char* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

BATCH__PRIVATE bool batch__big_endian(void) {
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 0;
}

/* Fingerprints: a running 64-bit hash of the job's shape. */
BATCH__PRIVATE uint64_t batch__fp_mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 29);
}
BATCH__PRIVATE uint64_t batch__fp_str(uint64_t h, const char* s) {
    if (!s) return batch__fp_mix(h, 0x5A5Au);
    for (; *s; s++) h = batch__fp_mix(h, (unsigned char)*s);
    return batch__fp_mix(h, 0xA5A5u);
}

/* ---- the default I/O: POSIX --------------------------------------------------------------- */
#if defined(BATCH__POSIX_IO)
BATCH__PRIVATE int batch__pio_open(void* user, const char* path, intptr_t* out) {
    (void)user;
    int fd;
    do fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return errno ? errno : EIO;
    *out = fd;
    return 0;
}
/* An offset off_t cannot hold (a 32-bit off_t, without _FILE_OFFSET_BITS=64) is refused, not
   wrapped. */
#define BATCH__OFF_OK(off) (sizeof(off_t) >= 8 || (off) <= 0x7fffffffu)
BATCH__PRIVATE int batch__pio_read(void* user, intptr_t h, void* buf, size_t n, uint64_t off, size_t* done) {
    (void)user;
    if (!BATCH__OFF_OK(off + n)) return EFBIG;
    ssize_t r;
    do r = pread((int)h, buf, n, (off_t)off);
    while (r < 0 && errno == EINTR);
    if (r < 0) return errno ? errno : EIO;
    *done = (size_t)r;
    return 0;
}
BATCH__PRIVATE int batch__pio_write(void* user, intptr_t h, const void* buf, size_t n, uint64_t off, size_t* done) {
    (void)user;
    if (!BATCH__OFF_OK(off + n)) return EFBIG;
    ssize_t r;
    do r = pwrite((int)h, buf, n, (off_t)off);
    while (r < 0 && errno == EINTR);
    if (r < 0) return errno ? errno : EIO;
    *done = (size_t)r;
    return 0;
}
BATCH__PRIVATE int batch__pio_sync(void* user, intptr_t h) {
    (void)user;
#  if defined(__APPLE__)
    return fsync((int)h) ? errno : 0;
#  else
    return fdatasync((int)h) ? errno : 0;
#  endif
}
BATCH__PRIVATE int batch__pio_truncate(void* user, intptr_t h, uint64_t size) {
    (void)user;
    if (!BATCH__OFF_OK(size)) return EFBIG;
    return ftruncate((int)h, (off_t)size) ? errno : 0;
}
BATCH__PRIVATE int batch__pio_size(void* user, intptr_t h, uint64_t* size) {
    (void)user;
    struct stat st;
    if (fstat((int)h, &st)) return errno;
    if (!S_ISREG(st.st_mode)) return EINVAL;   /* a journal is a regular file */
    *size = (uint64_t)st.st_size;
    return 0;
}
BATCH__PRIVATE void batch__pio_close(void* user, intptr_t h) {
    (void)user;
    close((int)h);
}
/* fsync of the directory that holds path (its entry for a new file). 0 or an errno. */
BATCH__PRIVATE int batch__sync_dir(const char* path) {
    const char* slash = strrchr(path, '/');
    char dir[4096];
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n >= sizeof dir) return ENAMETOOLONG;
    if (slash) { memcpy(dir, path, n ? n : 1); dir[n ? n : 1] = 0; }   /* "/x" -> "/" */
    else { dir[0] = '.'; dir[1] = 0; }
    int fd;
    do fd = open(dir, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return errno ? errno : EIO;
    int e = fsync(fd) ? errno : 0;
    close(fd);
    return e == EINVAL ? 0 : e;   /* some file systems cannot sync a directory: nothing to do */
}

/* The queue's cross-process lock on an open file: flock, held per open file description (Linux,
   the BSDs, macOS): two handles of one process exclude each other, and closing another
   descriptor of the file does not drop it. (Linux's OFD fcntl locks have the same semantics,
   but valgrind does not treat F_OFD_SETLKW as blocking and hangs threads that wait on one.)
   Blocking; 0 or an errno. */
BATCH__PRIVATE int batch__file_lock(intptr_t h, bool exclusive) {
    int r;
    do r = flock((int)h, exclusive ? LOCK_EX : LOCK_SH);
    while (r < 0 && errno == EINTR);
    return r < 0 ? (errno ? errno : EIO) : 0;
}
BATCH__PRIVATE void batch__file_unlock(intptr_t h) { (void)flock((int)h, LOCK_UN); }
/* Atomically replaces `to` with `from`. 0 or an errno. */
BATCH__PRIVATE int batch__file_rename(const char* from, const char* to) { return rename(from, to) ? errno : 0; }
BATCH__PRIVATE void batch__file_remove(const char* path) { (void)unlink(path); }
/* The size of an open file, and whether it was removed from its directory (replaced by a
   rename, or deleted), with one call. 0 or an errno. */
BATCH__PRIVATE int batch__file_stat(intptr_t h, uint64_t* size, bool* gone) {
    struct stat st;
    if (fstat((int)h, &st)) return errno;
    *size = (uint64_t)st.st_size;
    *gone = st.st_nlink == 0;
    return 0;
}
/* Wall-clock nanoseconds since 1970 (leases are compared across processes). */
BATCH__PRIVATE uint64_t batch__wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const batch_journal_io batch__posix_io = {
    batch__pio_open, batch__pio_read, batch__pio_write, batch__pio_sync,
    batch__pio_truncate, batch__pio_size, batch__pio_close, NULL
};
BATCH_API const batch_journal_io* batch_journal_posix_io(void) { return &batch__posix_io; }
#else
BATCH_API const batch_journal_io* batch_journal_posix_io(void) { return NULL; }
/* No directory to sync: custom hooks sync what they choose, and on Windows there is no such
   call. A directory opens only with backup semantics and FlushFileBuffers is not defined on it;
   NTFS records a file's creation in its metadata log, which the FlushFileBuffers of the file
   itself (a MACHINE journal's first sync) commits. */
BATCH__PRIVATE int batch__sync_dir(const char* path) { (void)path; return 0; }
#endif

/* ---- the default I/O on Windows: Win32 --------------------------------------------------------
   The same rules as the POSIX I/O: WriteFile goes straight to the OS (no user-space buffer: a
   PROCESS record survives the process being killed), FlushFileBuffers for MACHINE durability,
   positional reads and writes (OVERLAPPED offsets on a synchronous handle), the last path
   component is never followed (FILE_FLAG_OPEN_REPARSE_POINT, then a reparse point is refused:
   O_NOFOLLOW), the handle is not inherited by child processes (O_CLOEXEC) and a new file gets
   a DACL for the current user only (0600). Paths are UTF-8. */
#if defined(BATCH__WIN32_IO)
/* A Win32 error as the errno value the journal expects (EIO for the unexpected ones). */
BATCH__PRIVATE int batch__win32_errno(DWORD e) {
    switch (e) {
        case ERROR_FILE_NOT_FOUND: case ERROR_PATH_NOT_FOUND: case ERROR_INVALID_DRIVE:
        case ERROR_BAD_NETPATH: case ERROR_BAD_NET_NAME:
            return ENOENT;
        case ERROR_ACCESS_DENIED: case ERROR_SHARING_VIOLATION: case ERROR_LOCK_VIOLATION:
        case ERROR_PRIVILEGE_NOT_HELD:
            return EACCES;
        case ERROR_WRITE_PROTECT: return EROFS;
        case ERROR_DISK_FULL: case ERROR_HANDLE_DISK_FULL: return ENOSPC;
        case ERROR_NOT_ENOUGH_MEMORY: case ERROR_OUTOFMEMORY: return ENOMEM;
        case ERROR_FILENAME_EXCED_RANGE: case ERROR_BUFFER_OVERFLOW: return ENAMETOOLONG;
        case ERROR_INVALID_NAME: case ERROR_INVALID_PARAMETER: case ERROR_BAD_PATHNAME: return EINVAL;
        case ERROR_DIRECTORY: return ENOTDIR;
        case ERROR_TOO_MANY_OPEN_FILES: return EMFILE;
        case ERROR_NO_UNICODE_TRANSLATION: return EILSEQ;
        case ERROR_CANT_RESOLVE_FILENAME: return ELOOP;
        default: return EIO;
    }
}

/* The UTF-8 path as UTF-16 (plain malloc, like thread start-up: not an allocation the user
   accounts), or NULL with *err set. */
BATCH__PRIVATE WCHAR* batch__wio_wpath(const char* path, int* err) {
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, NULL, 0);
    if (n <= 0) { *err = batch__win32_errno(GetLastError()); return NULL; }
    WCHAR* w = (WCHAR*)malloc((size_t)n * sizeof *w);
    if (!w) { *err = ENOMEM; return NULL; }
    if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, w, n) != n) {
        *err = batch__win32_errno(GetLastError());
        free(w);
        return NULL;
    }
    return w;
}

/* A security descriptor whose DACL grants the process's user all access and nobody else
   anything, protected from the ACEs the directory would pass on: mode 0600. *mem holds the
   user's SID and the ACL (free it after CreateFileW). 0 or an errno. */
BATCH__PRIVATE int batch__wio_private_sd(SECURITY_DESCRIPTOR* sd, void** mem) {
    HANDLE tok;
    DWORD n = 0;
    *mem = NULL;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok)) return batch__win32_errno(GetLastError());
    if (!GetTokenInformation(tok, TokenUser, NULL, 0, &n) && GetLastError() != ERROR_INSUFFICIENT_BUFFER) {
        DWORD e = GetLastError();
        CloseHandle(tok);
        return batch__win32_errno(e);
    }
    size_t at = ((size_t)n + 7) & ~(size_t)7, acl_max = sizeof(ACL) + sizeof(ACCESS_ALLOWED_ACE) + SECURITY_MAX_SID_SIZE;
    unsigned char* m = (unsigned char*)malloc(at + acl_max);
    if (!m) { CloseHandle(tok); return ENOMEM; }
    TOKEN_USER* tu = (TOKEN_USER*)(void*)m;
    ACL* acl = (ACL*)(void*)(m + at);
    BOOL ok = GetTokenInformation(tok, TokenUser, tu, n, &n) &&
              InitializeAcl(acl, (DWORD)(sizeof(ACL) + sizeof(ACCESS_ALLOWED_ACE) + GetLengthSid(tu->User.Sid)), ACL_REVISION) &&
              AddAccessAllowedAce(acl, ACL_REVISION, FILE_ALL_ACCESS, tu->User.Sid) &&
              InitializeSecurityDescriptor(sd, SECURITY_DESCRIPTOR_REVISION) &&
              SetSecurityDescriptorDacl(sd, TRUE, acl, FALSE) &&
              SetSecurityDescriptorControl(sd, SE_DACL_PROTECTED, SE_DACL_PROTECTED);
    DWORD e = ok ? 0 : GetLastError();
    CloseHandle(tok);
    if (!ok) { free(m); return batch__win32_errno(e); }
    *mem = m;
    return 0;
}

BATCH__PRIVATE int batch__wio_open(void* user, const char* path, intptr_t* out) {
    (void)user;
    int e = 0;
    WCHAR* w = batch__wio_wpath(path, &e);
    if (!w) return e;
    SECURITY_DESCRIPTOR sd;
    void* mem = NULL;
    if ((e = batch__wio_private_sd(&sd, &mem)) != 0) { free(w); return e; }
    SECURITY_ATTRIBUTES sa = { sizeof sa, &sd, FALSE };   /* FALSE: not inherited (O_CLOEXEC) */
    /* every share mode, as a POSIX file has: others may read it, and rename or delete it */
    HANDLE h = CreateFileW(w, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                           &sa, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
    e = h == INVALID_HANDLE_VALUE ? batch__win32_errno(GetLastError()) : 0;
    free(mem);
    free(w);
    if (e) return e;
    BY_HANDLE_FILE_INFORMATION fi;
    if (!GetFileInformationByHandle(h, &fi)) e = batch__win32_errno(GetLastError());
    else if (fi.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) e = ELOOP;   /* a link: refused, O_NOFOLLOW's error */
    if (e) { CloseHandle(h); return e; }
    *out = (intptr_t)h;
    return 0;
}
/* ReadFile and WriteFile move at most a DWORD: callers loop over short counts anyway. */
#define BATCH__WIO_MAX ((size_t)1 << 30)
BATCH__PRIVATE int batch__wio_read(void* user, intptr_t h, void* buf, size_t n, uint64_t off, size_t* done) {
    (void)user;
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.Offset = (DWORD)off;
    ov.OffsetHigh = (DWORD)(off >> 32);
    DWORD got = 0;
    if (!ReadFile((HANDLE)h, buf, (DWORD)(n < BATCH__WIO_MAX ? n : BATCH__WIO_MAX), &got, &ov)) {
        DWORD e = GetLastError();
        if (e != ERROR_HANDLE_EOF) return batch__win32_errno(e);
        got = 0;   /* at or past the end: 0 bytes, as pread */
    }
    *done = got;
    return 0;
}
BATCH__PRIVATE int batch__wio_write(void* user, intptr_t h, const void* buf, size_t n, uint64_t off, size_t* done) {
    (void)user;
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.Offset = (DWORD)off;
    ov.OffsetHigh = (DWORD)(off >> 32);
    DWORD put = 0;
    if (!WriteFile((HANDLE)h, buf, (DWORD)(n < BATCH__WIO_MAX ? n : BATCH__WIO_MAX), &put, &ov)) return batch__win32_errno(GetLastError());
    *done = put;
    return 0;
}
BATCH__PRIVATE int batch__wio_sync(void* user, intptr_t h) {
    (void)user;
    return FlushFileBuffers((HANDLE)h) ? 0 : batch__win32_errno(GetLastError());
}
BATCH__PRIVATE int batch__wio_truncate(void* user, intptr_t h, uint64_t size) {
    (void)user;
    FILE_END_OF_FILE_INFO eof;
    eof.EndOfFile.QuadPart = (LONGLONG)size;
    return SetFileInformationByHandle((HANDLE)h, FileEndOfFileInfo, &eof, sizeof eof) ? 0 : batch__win32_errno(GetLastError());
}
BATCH__PRIVATE int batch__wio_size(void* user, intptr_t h, uint64_t* size) {
    (void)user;
    BY_HANDLE_FILE_INFORMATION fi;
    LARGE_INTEGER sz;
    if (GetFileType((HANDLE)h) != FILE_TYPE_DISK) return EINVAL;   /* a journal is a regular file */
    if (!GetFileInformationByHandle((HANDLE)h, &fi)) return batch__win32_errno(GetLastError());
    if (fi.dwFileAttributes & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_DEVICE | FILE_ATTRIBUTE_REPARSE_POINT)) return EINVAL;
    if (!GetFileSizeEx((HANDLE)h, &sz)) return batch__win32_errno(GetLastError());
    *size = (uint64_t)sz.QuadPart;
    return 0;
}
BATCH__PRIVATE void batch__wio_close(void* user, intptr_t h) {
    (void)user;
    CloseHandle((HANDLE)h);
}

/* LockFileEx on one byte far past any data: Windows locks are mandatory for the range they
   cover, and the records must stay readable by a shared holder and writable by the exclusive one. */
#define BATCH__WLOCK_OFFSET 0x7FFFFFFF00000000ull
BATCH__PRIVATE int batch__file_lock(intptr_t h, bool exclusive) {
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.Offset = (DWORD)(BATCH__WLOCK_OFFSET & 0xFFFFFFFFu);
    ov.OffsetHigh = (DWORD)(BATCH__WLOCK_OFFSET >> 32);
    if (!LockFileEx((HANDLE)h, exclusive ? LOCKFILE_EXCLUSIVE_LOCK : 0, 0, 1, 0, &ov))
        return batch__win32_errno(GetLastError());
    return 0;
}
BATCH__PRIVATE void batch__file_unlock(intptr_t h) {
    OVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.Offset = (DWORD)(BATCH__WLOCK_OFFSET & 0xFFFFFFFFu);
    ov.OffsetHigh = (DWORD)(BATCH__WLOCK_OFFSET >> 32);
    (void)UnlockFileEx((HANDLE)h, 0, 1, 0, &ov);
}
/* Replaces `to` (which other handles may hold open) with `from`: a rename with POSIX semantics
   (Windows 10 1709+ on NTFS), else MoveFileEx, which fails while `to` is open: EBUSY. */
BATCH__PRIVATE int batch__file_rename(const char* from, const char* to) {
    int e = 0;
    WCHAR* wf = batch__wio_wpath(from, &e);
    if (!wf) return e;
    WCHAR* wt = batch__wio_wpath(to, &e);
    if (!wt) { free(wf); return e; }
    size_t tl = wcslen(wt) * sizeof(WCHAR);
    FILE_RENAME_INFO* ri = (FILE_RENAME_INFO*)calloc(1, sizeof *ri + tl);
    HANDLE h = ri ? CreateFileW(wf, DELETE | SYNCHRONIZE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                                OPEN_EXISTING, FILE_FLAG_OPEN_REPARSE_POINT, NULL) : INVALID_HANDLE_VALUE;
    BOOL ok = FALSE;
    if (h != INVALID_HANDLE_VALUE) {
        DWORD flags = 0x1 | 0x2;   /* FILE_RENAME_FLAG_REPLACE_IF_EXISTS | FILE_RENAME_FLAG_POSIX_SEMANTICS */
        memcpy(ri, &flags, sizeof flags);   /* the union's Flags (ReplaceIfExists in older headers) */
        ri->FileNameLength = (DWORD)tl;
        memcpy(ri->FileName, wt, tl);
        ok = SetFileInformationByHandle(h, (FILE_INFO_BY_HANDLE_CLASS)22 /* FileRenameInfoEx */, ri, (DWORD)(sizeof *ri + tl));
        CloseHandle(h);
    }
    free(ri);
    if (!ok && !MoveFileExW(wf, wt, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
        DWORD w = GetLastError();
        e = (w == ERROR_ACCESS_DENIED || w == ERROR_SHARING_VIOLATION) ? EBUSY : batch__win32_errno(w);
    }
    free(wf);
    free(wt);
    return e;
}
BATCH__PRIVATE void batch__file_remove(const char* path) {
    int e = 0;
    WCHAR* w = batch__wio_wpath(path, &e);
    if (w) { (void)DeleteFileW(w); free(w); }
}
BATCH__PRIVATE int batch__file_stat(intptr_t h, uint64_t* size, bool* gone) {
    BY_HANDLE_FILE_INFORMATION fi;
    if (!GetFileInformationByHandle((HANDLE)h, &fi)) return batch__win32_errno(GetLastError());
    *size = ((uint64_t)fi.nFileSizeHigh << 32) | fi.nFileSizeLow;
    *gone = fi.nNumberOfLinks == 0;
    return 0;
}
BATCH__PRIVATE uint64_t batch__wall_ns(void) {
    FILETIME ft;
    GetSystemTimeAsFileTime(&ft);   /* 100 ns units since 1601 */
    uint64_t t = ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
    return (t - 116444736000000000ull) * 100u;
}

static const batch_journal_io batch__win32_io = {
    batch__wio_open, batch__wio_read, batch__wio_write, batch__wio_sync,
    batch__wio_truncate, batch__wio_size, batch__wio_close, NULL
};
BATCH_API const batch_journal_io* batch_journal_win32_io(void) { return &batch__win32_io; }
#else
BATCH_API const batch_journal_io* batch_journal_win32_io(void) { return NULL; }
#endif
#if !defined(BATCH__POSIX_IO) && !defined(BATCH__WIN32_IO)
/* No file I/O (BATCH_NO_JOURNAL, bare metal): queues do not open. */
BATCH__PRIVATE int batch__file_lock(intptr_t h, bool exclusive) { (void)h; (void)exclusive; return ENOSYS; }
BATCH__PRIVATE void batch__file_unlock(intptr_t h) { (void)h; }
BATCH__PRIVATE int batch__file_rename(const char* from, const char* to) { (void)from; (void)to; return ENOSYS; }
BATCH__PRIVATE int batch__file_stat(intptr_t h, uint64_t* size, bool* gone) { (void)h; (void)size; (void)gone; return ENOSYS; }
BATCH__PRIVATE void batch__file_remove(const char* path) { (void)path; }
BATCH__PRIVATE uint64_t batch__wall_ns(void) { return batch_now_ns(); }
#endif

/* The I/O of a journal without hooks: POSIX, or Win32 on Windows; NULL with BATCH_NO_JOURNAL. */
BATCH__PRIVATE const batch_journal_io* batch__journal_default_io(void) {
    const batch_journal_io* io = batch_journal_posix_io();
    return io ? io : batch_journal_win32_io();
}

/* ---- the journal -------------------------------------------------------------------------- */
enum { BATCH__JKIND_GRAPH = 1, BATCH__JKIND_MAP = 2, BATCH__JKIND_QUEUE = 3 };
#define BATCH__JVERSION 1u
#define BATCH__JHEADER 32u
#define BATCH__JREC 8u                 /* length + CRC before each payload */
#define BATCH__JBUFFERED ((size_t)64 * 1024)

typedef struct batch__journal {
    batch_journal_io io;
    intptr_t h;
    void* alloc_ctx;
    batch__mutex lock;
    uint64_t end;                 /* where the next record goes */
    unsigned char* buf;           /* records not yet written */
    size_t used, cap;
    batch_durability dur;
    int sync_every, unsynced;
    int err;                      /* the first failed call's errno; no write after it */
    size_t max_payload;
} batch__journal;

/* Called for each valid record on open: BATCH_OK (applied), BATCH__JDROP (not applied: its work
   runs again, so the record is removed from the journal before the run appends a new one), or
   BATCH_ERR_CORRUPT when it does not fit the job (nothing is then run from the journal). */
#define BATCH__JDROP ((batch_result)2)
typedef batch_result (*batch__jreplay_fn)(void* arg, const unsigned char* payload, size_t len);

BATCH__PRIVATE bool batch__journal_desc_ok(const batch_journal_desc* d) {
    if (!d->path) return !d->io && !d->fingerprint && !d->durability && !d->sync_every && !d->rerun_failed;
    if (!d->path[0] || BATCH__ENUM_BAD(d->durability, BATCH_DURABLE_BUFFERED + 1)) return false;
    if (d->sync_every < 0) return false;
    const batch_journal_io* io = d->io ? d->io : batch__journal_default_io();
    return io && io->open && io->read && io->write && io->sync && io->truncate && io->size && io->close;
}

/* Reads exactly n bytes at off: 0, or an errno (EIO for a file shorter than expected). */
BATCH__PRIVATE int batch__jread(batch__journal* j, void* buf, size_t n, uint64_t off) {
    unsigned char* p = (unsigned char*)buf;
    while (n) {
        size_t got = 0;
        int e = j->io.read(j->io.user, j->h, p, n, off, &got);
        if (e) return e;
        if (got == 0 || got > n) return EIO;
        p += got; n -= got; off += got;
    }
    return 0;
}

/* Writes the buffer at the end of the file; lock held. A failure is kept in j->err: the file
   then ends in a torn record at worst, which the next open cuts off. */
BATCH__PRIVATE int batch__jflush(batch__journal* j) {
    size_t at = 0;
    while (!j->err && at < j->used) {
        size_t put = 0;
        int e = j->io.write(j->io.user, j->h, j->buf + at, j->used - at, j->end, &put);
        if (!e && (put == 0 || put > j->used - at)) e = EIO;
        if (e) { j->err = e; break; }
        at += put;
        j->end += put;
    }
    j->used = 0;
    return j->err;
}

BATCH__PRIVATE int batch__jsync(batch__journal* j) {
    if (!j->err && j->unsynced) {
        int e = j->io.sync(j->io.user, j->h);
        if (e) j->err = e;
        j->unsynced = 0;
    }
    return j->err;
}

BATCH__PRIVATE bool batch__jreserve(batch__journal* j, size_t n) {
    if (n <= j->cap) return true;
    size_t c = j->cap ? j->cap : 256;
    while (c < n) c *= 2;
    unsigned char* b = (unsigned char*)BATCH_REALLOC(j->buf, c, j->alloc_ctx);
    if (!b) return false;
    j->buf = b;
    j->cap = c;
    return true;
}

BATCH__PRIVATE void batch__journal_free(batch__journal* j) {
    if (!j) return;
    if (j->h >= 0) j->io.close(j->io.user, j->h);
    if (j->buf) BATCH_FREE(j->buf, j->alloc_ctx);
    batch__mutex_destroy(&j->lock);
    BATCH_FREE(j, j->alloc_ctx);
}

BATCH__PRIVATE batch_result batch__errno_result(int e) { return e == ENOMEM ? BATCH_ERR_NOMEM : BATCH_ERR_IO; }

/* Removes the dropped records: reads the kept ones into memory, cuts the file after the header
   and writes them back. A crash in between loses journaled progress (the work runs again), never
   correctness: the file is always a valid prefix of non-overlapping records. */
BATCH__PRIVATE batch_result batch__journal_compact(batch__journal* j, const unsigned char* dropped, size_t nrec, uint64_t kept) {
    if (kept > SIZE_MAX / 2) return BATCH_ERR_NOMEM;
    unsigned char* keep = (unsigned char*)BATCH_MALLOC(kept ? (size_t)kept : 1, j->alloc_ctx);
    if (!keep) return BATCH_ERR_NOMEM;
    uint64_t off = BATCH__JHEADER;
    size_t at = 0;
    int e = 0;
    for (size_t i = 0; i < nrec && !e; i++) {
        unsigned char h[BATCH__JREC];
        if ((e = batch__jread(j, h, BATCH__JREC, off)) != 0) break;
        uint32_t len = batch__get32(h);
        if (!(dropped[i / 8] & (1u << (i % 8)))) {
            memcpy(keep + at, h, BATCH__JREC);
            e = batch__jread(j, keep + at + BATCH__JREC, len, off + BATCH__JREC);
            at += BATCH__JREC + len;
        }
        off += BATCH__JREC + len;
    }
    if (!e) e = j->io.truncate(j->io.user, j->h, BATCH__JHEADER);
    if (!e) {
        j->end = BATCH__JHEADER;
        size_t cap = j->cap;   /* write from `keep` through the buffer's flush path */
        unsigned char* buf = j->buf;
        j->buf = keep; j->used = at; j->cap = (size_t)kept;
        j->unsynced = 1;
        batch__jflush(j);
        if (j->dur == BATCH_DURABLE_MACHINE) batch__jsync(j);
        j->buf = buf; j->cap = cap; j->used = 0;
        e = j->err;
    }
    BATCH_FREE(keep, j->alloc_ctx);
    return e ? batch__errno_result(e) : BATCH_OK;
}

/* Is [off, size) all zero bytes? 0 if so, -1 if not, else an errno. A power loss during an
   append can leave the file longer than what reached the disk, the rest reading as zeros (the
   file system extended the file before the data was written): a torn append, cut off like any
   other. A zero length followed by anything else was never written by a journal. */
BATCH__PRIVATE int batch__jzero_tail(batch__journal* j, uint64_t off, uint64_t size) {
    while (off < size) {
        size_t n = size - off < (uint64_t)j->cap ? (size_t)(size - off) : j->cap;
        int e = batch__jread(j, j->buf, n, off);
        if (e) return e;
        for (size_t i = 0; i < n; i++) if (j->buf[i]) return -1;
        off += n;
    }
    return 0;
}

/* A journal file shorter than a header: new, or a header cut short by a crash (then what is
   there is a prefix of ours). Writes the header `want`. */
BATCH__PRIVATE batch_result batch__journal_start(batch__journal* j, const batch_journal_desc* d, const unsigned char* want,
                                                 uint64_t size) {
    unsigned char hdr[BATCH__JHEADER];
    int e;
    if (size && ((e = batch__jread(j, hdr, (size_t)size, 0)) != 0)) return batch__errno_result(e);
    if (size && memcmp(hdr, want, (size_t)size) != 0)   /* not ours, or another job's */
        return memcmp(hdr, want, size < 8 ? (size_t)size : 8) == 0 ? BATCH_ERR_MISMATCH : BATCH_ERR_CORRUPT;
    memcpy(j->buf, want, BATCH__JHEADER);
    j->used = BATCH__JHEADER;
    j->end = 0;
    if (size && (e = j->io.truncate(j->io.user, j->h, 0)) != 0) return batch__errno_result(e);
    j->unsynced = 1;
    if (batch__jflush(j) || (j->dur == BATCH_DURABLE_MACHINE && batch__jsync(j))) return batch__errno_result(j->err);
    /* MACHINE: the new file's name must survive a power loss too (POSIX I/O only; see batch__sync_dir) */
    if (j->dur == BATCH_DURABLE_MACHINE && !d->io && (e = batch__sync_dir(d->path)) != 0) return batch__errno_result(e);
    return BATCH_OK;
}

/* The header of an existing journal against `want`: BATCH_ERR_CORRUPT (not a journal, another
   version, a bad CRC), BATCH_ERR_MISMATCH (another job's), BATCH_ERR_IO. */
BATCH__PRIVATE batch_result batch__journal_header(batch__journal* j, const unsigned char* want) {
    unsigned char hdr[BATCH__JHEADER];
    int e = batch__jread(j, hdr, BATCH__JHEADER, 0);
    if (e) return batch__errno_result(e);
    if (memcmp(hdr, want, 8) != 0 || batch__get32(hdr + 8) != BATCH__JVERSION || batch__get32(hdr + 28) != batch__crc32c(hdr, 28))
        return BATCH_ERR_CORRUPT;
    return memcmp(hdr, want, BATCH__JHEADER) != 0 ? BATCH_ERR_MISMATCH : BATCH_OK;
}

/* The records after a valid header: replays the valid prefix through replay(arg), cuts what
   follows it (a torn or untrusted tail), and removes the records replay dropped. */
BATCH__PRIVATE batch_result batch__journal_replay(batch__journal* j, uint64_t size, batch__jreplay_fn replay, void* arg) {
    batch_result r = BATCH_OK;
    unsigned char* dropped = NULL;   /* one bit per record replayed: not applied */
    uint64_t off = BATCH__JHEADER, kept_bytes = 0;
    size_t nrec = 0, capbits = 0;
    bool any_drop = false;
    int e;
    while (off < size) {
        if (size - off < BATCH__JREC) break;   /* torn */
        if ((e = batch__jread(j, j->buf, BATCH__JREC, off)) != 0) { r = batch__errno_result(e); goto out; }
        uint32_t len = batch__get32(j->buf), crc = batch__get32(j->buf + 4);
        if (len == 0 && crc == 0) {   /* zeros to the end: a torn append (cut); else corrupt */
            if ((e = batch__jzero_tail(j, off + BATCH__JREC, size)) != 0) { r = e < 0 ? BATCH_ERR_CORRUPT : batch__errno_result(e); goto out; }
            break;
        }
        if (len == 0 || len > j->max_payload) { r = BATCH_ERR_CORRUPT; goto out; }   /* never written so */
        if (size - off - BATCH__JREC < len) break;                                     /* torn */
        if ((e = batch__jread(j, j->buf, len, off + BATCH__JREC)) != 0) { r = batch__errno_result(e); goto out; }
        if (batch__crc32c(j->buf, len) != crc) break;                                  /* not trusted, nor what follows */
        r = replay(arg, j->buf, len);
        if (r != BATCH_OK && r != BATCH__JDROP) goto out;
        if (nrec / 8 >= capbits) {
            size_t nc = capbits ? capbits * 2 : 64;
            unsigned char* b = (unsigned char*)BATCH_REALLOC(dropped, nc, j->alloc_ctx);
            if (!b) { r = BATCH_ERR_NOMEM; goto out; }
            memset(b + capbits, 0, nc - capbits);
            dropped = b;
            capbits = nc;
        }
        if (r == BATCH__JDROP) { dropped[nrec / 8] |= (unsigned char)(1u << (nrec % 8)); any_drop = true; }
        else kept_bytes += BATCH__JREC + len;
        r = BATCH_OK;
        nrec++;
        off += BATCH__JREC + len;
    }
    if (off < size && (e = j->io.truncate(j->io.user, j->h, off)) != 0) { r = batch__errno_result(e); goto out; }
    j->end = off;
    if (any_drop) r = batch__journal_compact(j, dropped, nrec, kept_bytes);
out:
    if (dropped) BATCH_FREE(dropped, j->alloc_ctx);
    return r;
}

/* The header a journal of this kind, fingerprint and accumulator size starts with. */
BATCH__PRIVATE void batch__journal_want(unsigned char want[BATCH__JHEADER], uint32_t kind, uint64_t fp, uint32_t acc_size) {
    static const unsigned char magic[8] = { 'B', 'A', 'T', 'C', 'H', 'J', 'N', 'L' };
    memcpy(want, magic, sizeof magic);
    batch__put32(want + 8, BATCH__JVERSION);
    batch__put32(want + 12, kind);
    batch__put64(want + 16, fp);
    batch__put32(want + 24, acc_size);
    batch__put32(want + 28, batch__crc32c(want, 28));
}

/* A journal object with its file open (not read) and a buffer of `buffer` bytes; *size gets
   the file's size. On any error nothing is left open. */
BATCH__PRIVATE batch_result batch__journal_new(batch__journal** out, const batch_journal_desc* d, size_t max_payload,
                                               size_t buffer, uint64_t* size, void* alloc_ctx) {
    *out = NULL;
    batch__journal* j = (batch__journal*)BATCH_MALLOC(sizeof *j, alloc_ctx);
    if (!j) return BATCH_ERR_NOMEM;
    memset(j, 0, sizeof *j);
    j->alloc_ctx = alloc_ctx;
    j->io = *(d->io ? d->io : batch__journal_default_io());
    j->h = -1;
    j->dur = d->durability;
    j->sync_every = d->sync_every ? d->sync_every : 1;
    j->max_payload = max_payload;
    if (!batch__mutex_init(&j->lock)) { BATCH_FREE(j, alloc_ctx); return BATCH_ERR_NOMEM; }
    intptr_t h = -1;
    int e = j->io.open(j->io.user, d->path, &h);
    if (e) { batch__journal_free(j); return batch__errno_result(e); }
    j->h = h;
    batch_result r = BATCH_OK;
    if ((e = j->io.size(j->io.user, j->h, size)) != 0) r = batch__errno_result(e);
    else if (!batch__jreserve(j, buffer)) r = BATCH_ERR_NOMEM;
    if (r != BATCH_OK) { batch__journal_free(j); return r; }
    *out = j;
    return BATCH_OK;
}

/* Opens (or creates) the journal of a job and replays its valid records through replay(arg).
   max_payload bounds a record (larger: corrupt). On any error nothing is left open. */
BATCH__PRIVATE batch_result batch__journal_open(batch__journal** out, const batch_journal_desc* d, uint32_t kind,
                                                uint64_t fp, uint32_t acc_size, size_t max_payload,
                                                batch__jreplay_fn replay, void* arg, void* alloc_ctx) {
    unsigned char want[BATCH__JHEADER];
    batch__journal_want(want, kind, fp, acc_size);
    uint64_t size = 0;
    batch__journal* j;
    /* the buffer, as big as appends will ever need (a buffered journal's 64 KiB and a record):
       no allocation while the job runs */
    size_t buffer = BATCH__JREC + max_payload + (d->durability == BATCH_DURABLE_BUFFERED ? BATCH__JBUFFERED : 0);
    batch_result r = batch__journal_new(&j, d, max_payload, buffer, &size, alloc_ctx);
    if (r != BATCH_OK) return r;
    if (size < BATCH__JHEADER) r = batch__journal_start(j, d, want, size);
    else if ((r = batch__journal_header(j, want)) == BATCH_OK) r = batch__journal_replay(j, size, replay, arg);
    if (r != BATCH_OK) { batch__journal_free(j); return r; }
    *out = j;
    return BATCH_OK;
}

/* Appends one record of at most max_payload bytes (any thread; no allocation: the buffer was
   made at open). After a failed write every append fails: BATCH_ERR_IO (the job stops). */
BATCH__PRIVATE batch_result batch__journal_append(batch__journal* j, const unsigned char* payload, size_t len) {
    batch__mutex_lock(&j->lock);
    batch_result r = BATCH_OK;
    if (j->err) r = batch__errno_result(j->err);
    else if (len > j->max_payload || !batch__jreserve(j, j->used + BATCH__JREC + len)) { j->err = ENOMEM; r = BATCH_ERR_NOMEM; }
    else {
        unsigned char* p = j->buf + j->used;
        batch__put32(p, (uint32_t)len);
        batch__put32(p + 4, batch__crc32c(payload, len));
        memcpy(p + BATCH__JREC, payload, len);
        j->used += BATCH__JREC + len;
        j->unsynced++;
        if (j->dur != BATCH_DURABLE_BUFFERED || j->used >= BATCH__JBUFFERED) batch__jflush(j);
        if (j->dur == BATCH_DURABLE_MACHINE && j->unsynced >= j->sync_every) batch__jsync(j);
        if (j->err) r = batch__errno_result(j->err);
    }
    batch__mutex_unlock(&j->lock);
    return r;
}

/* Writes what is buffered, syncs (MACHINE), closes and frees: the first failure's code. */
BATCH__PRIVATE batch_result batch__journal_close(batch__journal* j) {
    if (!j) return BATCH_OK;
    batch__jflush(j);
    if (j->dur == BATCH_DURABLE_MACHINE) batch__jsync(j);
    batch_result r = j->err ? batch__errno_result(j->err) : BATCH_OK;
    batch__journal_free(j);
    return r;
}

#endif /* BATCH__JOURNAL_C */
