using Mailman.Lists;

namespace Mailman.Tests.Lists;

public sealed class PasswordHashTests
{
    [Fact]
    public void A_password_is_stored_as_a_salted_PBKDF2_hash_and_verified_in_constant_time()
    {
        var a = PasswordHash.Create("correct horse");
        var b = PasswordHash.Create("correct horse");
        Assert.StartsWith("pbkdf2-sha256$600000$", a, StringComparison.Ordinal);
        Assert.NotEqual(a, b);
        Assert.DoesNotContain("correct horse", a, StringComparison.Ordinal);
        Assert.True(PasswordHash.Verify("correct horse", a));
        Assert.True(PasswordHash.Verify("correct horse", b));
        Assert.False(PasswordHash.Verify("correct horse ", a));
        Assert.False(PasswordHash.Verify("", a));
    }

    [Theory]
    [InlineData("")]
    [InlineData("plain")]
    [InlineData("pbkdf2-sha256$x$AAAA$AAAA")]
    [InlineData("pbkdf2-sha256$1000$not base64$AAAA")]
    [InlineData("md5$1000$AAAA$AAAA")]
    public void Anything_malformed_never_verifies(string stored) => Assert.False(PasswordHash.Verify("pw", stored));

    [Fact]
    public void The_setting_stores_only_the_hash_and_lists_show_never_reveals_it()
    {
        var list = new MailingList { Name = ListName.Parse("dev@example.org") };
        list.Set("moderator_password", "hunter2-and-more");
        Assert.True(PasswordHash.Verify("hunter2-and-more", list.ModeratorPasswordHash));
        var shown = list.Describe().ToDictionary(p => p.Key, p => p.Value);
        Assert.Equal("(set)", shown["moderator_password"]);
        Assert.DoesNotContain(shown.Values, v => v.Contains("hunter2-and-more", StringComparison.Ordinal) || v.Contains("pbkdf2", StringComparison.Ordinal));
        list.Set("moderator_password", "");
        Assert.Equal("", list.ModeratorPasswordHash);
    }

    // Review 57: "a" was accepted, and then found in every approved post's Date: (held).
    [Theory]
    [InlineData("a", "at least 8 characters")]
    [InlineData("short-7", "at least 8 characters")]
    [InlineData(" padded-password", "white space at either end")]
    [InlineData("tab\tinside-it", "control characters are not allowed")]
    public void A_moderator_password_that_could_not_work_is_refused(string password, string why)
    {
        var list = new MailingList { Name = ListName.Parse("dev@example.org") };
        var e = Assert.Throws<ArgumentException>(() => list.Set("moderator_password", password));
        Assert.Contains(why, e.Message, StringComparison.Ordinal);
        Assert.Equal("", list.ModeratorPasswordHash);
    }
}
