using Mailman.Lists;

namespace Mailman.Tests.Lists;

public sealed class SubscriptionSettingsTests
{
    [Fact]
    public void Defaults_are_Mailman_3s()
    {
        var list = new MailingList();
        var settings = list.Describe().ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal("confirm", settings["subscription_policy"]);
        Assert.Equal("confirm", settings["unsubscription_policy"]);
        Assert.Equal("3d", settings["pending_request_life"]);
        Assert.Equal("true", settings["send_welcome_message"]);
        Assert.Equal("true", settings["send_goodbye_message"]);
        Assert.Equal("remove", settings["one_click_action"]);
        Assert.Equal("10", settings["max_autoresponses_per_day"]);
    }

    [Theory]
    [InlineData("subscription_policy", "confirm_then_moderate", "confirm_then_moderate")]
    [InlineData("subscription_policy", "OPEN", "open")]
    [InlineData("unsubscription_policy", "open", "open")]
    [InlineData("pending_request_life", "72h", "3d")]
    [InlineData("pending_request_life", "36h", "36h")]
    [InlineData("pending_request_life", "1.12:00:00", "36h")]
    [InlineData("pending_request_life", "2w", "14d")]
    [InlineData("pending_request_life", "00:30:00", "00:30:00")]
    [InlineData("send_welcome_message", "no", "false")]
    [InlineData("send_goodbye_message", "off", "false")]
    [InlineData("one_click_action", "disable", "disable")]
    public void Settings_parse_and_describe_in_Mailmans_terms(string key, string value, string shown)
    {
        var list = new MailingList();
        list.Set(key, value);
        Assert.Equal(shown, list.Describe().Single(kv => kv.Key == key).Value);
    }

    [Theory]
    [InlineData("subscription_policy", "moderated")]
    [InlineData("subscription_policy", "1")]
    [InlineData("unsubscription_policy", "moderate")]
    [InlineData("pending_request_life", "0d")]
    [InlineData("pending_request_life", "-1d")]
    [InlineData("pending_request_life", "400d")]
    [InlineData("pending_request_life", "soon")]
    [InlineData("pending_request_life", "90")] // no unit: .NET would read days (review 94)
    [InlineData("send_welcome_message", "maybe")]
    [InlineData("one_click_action", "delete")]
    public void Bad_values_are_refused_with_the_choices(string key, string value)
    {
        var e = Assert.Throws<ArgumentException>(() => new MailingList().Set(key, value));
        Assert.StartsWith(key + ":", e.Message, StringComparison.Ordinal);
    }
}
