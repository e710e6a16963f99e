using Blockshot.Drivers.Raw;

namespace Blockshot.Drivers.Tests.Raw;

public class LockHoldersTests
{
    [Theory]
    [InlineData("lock:\t1: OFDLCK ADVISORY  READ -1 fe:00:11657653 100 101", 100, true)]
    [InlineData("lock:\t1: OFDLCK ADVISORY  READ -1 fe:00:11657653 100 101", 101, true)]
    [InlineData("lock:\t1: OFDLCK ADVISORY  READ -1 fe:00:11657653 100 101", 102, false)]
    [InlineData("lock:\t2: OFDLCK ADVISORY  READ -1 fe:00:11657653 203 203", 203, true)]
    [InlineData("lock:\t3: OFDLCK ADVISORY  WRITE -1 fe:00:11657653 0 EOF", 201, true)]
    [InlineData("lock:\t1: OFDLCK ADVISORY  READ -1 fe:00:99 100 101", 100, false)]
    [InlineData("lock:\t1: -> OFDLCK ADVISORY  WRITE -1 fe:00:11657653 100 100", 100, false)]
    public void Fdinfo_lock_lines_are_matched_by_file_and_byte(string line, long lockByte, bool covers)
    {
        Assert.Equal(covers, LockHolders.Covers(line, "fe:00:11657653", lockByte));
    }
}
