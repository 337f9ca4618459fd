from tests.fakes.discord import make_user


async def test_hug(bot, discord_api, nekos):
    bob = make_user(name="bob")
    handle = await discord_api.interact(discord_api.slash("hug", {"user": bob}))
    message = await handle.wait_message(timeout=10)
    print(message)
    print(handle.describe())
    assert handle.response_time < 3
