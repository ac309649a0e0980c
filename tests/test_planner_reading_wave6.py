"""Classes of wording the rules planner reads in general (issue 28, seventh pass): found by reading the misses of
development sets Z3 (second-language and terse writers), Z4 (marketing briefs) and Z5 (asking a friend) after each
was scored once. Every wording here is written for this file, none taken from any instruction set, so a rule
written for one sentence would not pass them."""

from __future__ import annotations

import pytest
from rules_plans import plan as _plan
from rules_plans import tools as _tools
from rules_plans import values as _values

from legoedit_core.planners.vocabulary import spell


@pytest.mark.parametrize("instruction", [
    "a little warmer, nothing too strong",
    "warmer please but not too much",
    "warm it up, don't go too heavy",
])
def test_a_limit_on_how_much_keeps_the_edit_slight(cpu_toolset, instruction):
    assert 0 < _values(_plan(cpu_toolset, instruction), "temperature")[0] < 0.3


def test_a_nouns_s_before_how_it_is_reads_is(cpu_toolset):
    result = _plan(cpu_toolset, "The mug's rather a dull brown. Could it be teal?")
    assert _tools(result) == {"SOS", "RCM"}
    assert _values(result, "prompt")[-1].endswith("teal")


@pytest.mark.parametrize("instruction", [
    "Sharpen the dog a touch. The calendar goes to print on Tuesday and the editor signs off tomorrow.",
    "Make the background plain white. We launched the range last month and sales doubled.",
    "Add 'OPEN' at the top. The shop reopens next week after the refit.",
])
def test_a_sentence_about_when_things_happen_is_the_story_around_the_edit(cpu_toolset, instruction):
    assert len(_tools(_plan(cpu_toolset, instruction))) <= 2


def test_a_dated_complaint_or_request_still_counts(cpu_toolset):
    assert not _plan(cpu_toolset, "Brighten it. Put a party hat on the dog by Friday.").ok  # undoable, dated
    assert _tools(_plan(cpu_toolset, "The shot from last week is too dark")) == {"ADJUST"}


@pytest.mark.parametrize("instruction", [
    "erase the mug and fill the hole with the table",
    "take the lamp away and fill in the gap with the wall behind",
    "delete the mug, then patch up the wood where it stood",
])
def test_filling_the_hole_after_a_removal_is_how_it_is_removed(cpu_toolset, instruction):
    assert _tools(_plan(cpu_toolset, instruction)) == {"SOS", "INPAINT"}


def test_a_new_background_said_with_fill_is_still_a_background(cpu_toolset):
    result = _plan(cpu_toolset, "fill the background with mint green")
    assert _tools(result) == {"SOS", "CBG"}


def test_pad_with_nothing_to_pad_is_the_launch_pad(cpu_toolset):
    assert "PAD" not in _tools(_plan(cpu_toolset, "remove the rocket and leave the empty pad"))
    assert _tools(_plan(cpu_toolset, "pad it out to a square")) == {"PAD"}


@pytest.mark.parametrize(("instruction", "tools"), [
    ("cut the image down to just the dog", {"SOS", "BBOX", "CROP"}),
    ("cut the photo to her face for the badge", {"RES", "BBOX", "CROP"}),
])
def test_cutting_the_picture_to_a_thing_crops(cpu_toolset, instruction, tools):
    assert _tools(_plan(cpu_toolset, instruction)) == tools


def test_cutting_a_tone_stays_a_tone(cpu_toolset):
    assert _values(_plan(cpu_toolset, "cut the contrast in half"), "contrast")[0] < 1


def test_a_wish_that_it_say_quoted_words_writes_them(cpu_toolset):
    result = _plan(cpu_toolset, "Along the bottom, could it say 'Happy Retirement, Sue'?")
    assert _tools(result) == {"TEXT"}
    assert _values(result, "prompt") == ["Happy Retirement, Sue"]
    assert not _plan(cpu_toolset, "the badge says 'Visitor', blur the grass").ok or "TEXT" not in _tools(
        _plan(cpu_toolset, "the badge says 'Visitor', blur the grass"))  # what it says now is no request


@pytest.mark.parametrize("instruction", [
    "Sharpen the dog slightly. Could that be done?",
    "Flip it left to right. Nothing else should change.",
    "Recolour the mug navy, just for fun.",
])
def test_questions_and_assurances_that_ask_nothing_more(cpu_toolset, instruction):
    assert _plan(cpu_toolset, instruction).ok


def test_plus_before_a_number_is_its_sign(cpu_toolset):
    result = _plan(cpu_toolset, "boost the saturation, like plus 20 percent")
    assert _tools(result) == {"ADJUST"}
    assert 1.1 < _values(result, "saturation")[0] < 1.3


@pytest.mark.parametrize(("instruction", "name", "below"), [
    ("knock the brightness back a bit", "brightness", True),
    ("pull the contrast back by half", "contrast", True),
    ("turn the saturation up", "saturation", False),
])
def test_a_tone_verb_split_by_its_tone_is_read_whole(cpu_toolset, instruction, name, below):
    value = _values(_plan(cpu_toolset, instruction), name)[0]
    assert (value < 1) if below else (value > 1)


def test_half_as_big_after_another_change_is_a_resize(cpu_toolset):
    assert _tools(_plan(cpu_toolset, "make it sepia and half as big")) == {"STYLE", "RESIZE"}


def test_what_is_happening_to_a_thing_is_no_request(cpu_toolset):
    assert _tools(_plan(cpu_toolset, "too dark, the trees are vanishing into the shadows")) == {"ADJUST"}


def test_a_tone_said_missing_is_no_removal(cpu_toolset):
    result = _plan(cpu_toolset, "the sky seems flat, there is no contrast in it")
    assert "INPAINT" not in _tools(result)


def test_what_is_left_after_a_removal_is_no_turn(cpu_toolset):
    assert _tools(_plan(cpu_toolset, "take the mug out so only the bare table is left")) == {"SOS", "INPAINT"}
    assert _tools(_plan(cpu_toolset, "could you whisk the mug away, I need the empty table")) == {"SOS", "INPAINT"}


def test_a_background_complaint_beside_an_edit_of_the_rest_explains_it(cpu_toolset):
    result = _plan(cpu_toolset, "desaturate everything but the mug. The clutter on the shelf is distracting.")
    assert _tools(result) == {"SOS", "INVERSE", "ADJUST"}


def test_a_thing_said_to_distract_is_what_an_edit_of_it_changes(cpu_toolset):
    result = _plan(cpu_toolset, "the watermark keeps catching my eye, can you lose it")
    assert _tools(result) == {"RES", "INPAINT"}
    assert _values(result, "prompt")[0].startswith("text")


def test_what_a_problem_hides_asks_no_change_of_it(cpu_toolset):
    assert _tools(_plan(cpu_toolset, "so murky I can hardly make out his grin")) == {"ADJUST"}


def test_everything_around_it_is_the_background(cpu_toolset):
    assert _tools(_plan(cpu_toolset, "the dog should pop, so darken everything around it")) == {
        "SOS", "INVERSE", "ADJUST"}


@pytest.mark.parametrize(("typed", "meant"), [("fase", "face"), ("doun", "down"), ("brigtness", "brightness"),
                                              ("shadw", "shadow")])
def test_spelling_weighs_the_slip_against_how_common_the_word_is(typed, meant):
    assert spell(typed) == meant


@pytest.mark.parametrize(("instruction", "tools"), [
    ("For the bakery's menu board, warm it up a little", {"ADJUST"}),
    ("for an alumni newsletter, crop in on her face", {"RES", "BBOX", "CROP"}),
    ("Recolour the mug teal. The layout goes live after the holidays.", {"SOS", "RCM"}),
])
def test_where_the_photo_goes_is_the_story_around_the_edit(cpu_toolset, instruction, tools):
    assert _tools(_plan(cpu_toolset, instruction)) == tools


def test_a_heading_that_names_a_thing_still_targets_it(cpu_toolset):
    result = _plan(cpu_toolset, "for the sky, make it a little bluer")
    assert _tools(result) == {"RES", "RCM"}
    assert _values(result, "prompt")[0] == "sky"


@pytest.mark.parametrize("instruction", [
    "make the dog the only thing in colour",
    "turn everything grey except the dog, so he's the only colourful thing",
    "desaturate everything bar the dog - he should be the only colour in it",
])
def test_the_only_thing_in_colour_greys_the_rest(cpu_toolset, instruction):
    assert _tools(_plan(cpu_toolset, instruction)) in ({"SOS", "INVERSE", "GRAYSCALE"}, {"SOS", "INVERSE", "ADJUST"})


def test_but_before_a_limit_is_no_exception(cpu_toolset):
    result = _plan(cpu_toolset, "take the colour down a lot, but not completely")
    assert _tools(result) == {"ADJUST"}
    assert _values(result, "saturation")[0] < 1


@pytest.mark.parametrize(("instruction", "tools"), [
    ("I wonder if the mug would look smarter in a deep teal?", {"SOS", "RCM"}),
    ("my son would love it if the dog were lime green", {"SOS", "RCM"}),
    ("the mug would look classier standing alone against plain black", {"SOS", "CBG"}),
])
def test_a_wished_colour_or_backdrop_is_a_request(cpu_toolset, instruction, tools):
    assert _tools(_plan(cpu_toolset, instruction)) == tools


@pytest.mark.parametrize("instruction", [
    "could the dog look like an oil painting hanging in a gallery?",
    "give it that brownish tint my dad's old slides have",
    "just a plain charcoal sketch of the mug, please",
])
def test_words_describing_a_look_are_the_looks(cpu_toolset, instruction):
    assert _tools(_plan(cpu_toolset, instruction)) == {"STYLE"}


def test_a_gentle_nudge_is_slight(cpu_toolset):
    assert 1 < _values(_plan(cpu_toolset, "give the brightness a gentle nudge up"), "brightness")[0] < 1.2


def test_how_a_kept_thing_stays_and_that_the_setting_is_fine_ask_nothing(cpu_toolset):
    assert "INPAINT" not in _tools(_plan(cpu_toolset, "blur the sky only, the dog must stay nice and clear"))
    result = _plan(cpu_toolset, "Sharpen the dog. The background is fine and the client was very clear about it.")
    assert _tools(result) == {"SOS", "SHARPEN"}


@pytest.mark.parametrize("instruction", [
    "the blue bits on the sign behind him, make them orange",
    "The white stripes on the banner behind her, could they go pale yellow?",
])
def test_coloured_parts_of_a_thing_behind_someone_are_those_colours_not_the_background(cpu_toolset, instruction):
    result = _plan(cpu_toolset, instruction)
    assert _tools(result) == {"RES", "RCM"}
    assert _values(result, "prompt")[0] in ("blue", "white")


def test_take_with_nothing_taken_away_removes_nothing(cpu_toolset):
    assert _tools(_plan(cpu_toolset, "take the dog and make his fur a bit warmer")) == {"SOS", "ADJUST"}
    assert _tools(_plan(cpu_toolset, "take the dog out")) == {"SOS", "INPAINT"}


def test_who_noticed_a_problem_is_no_thing_to_edit(cpu_toolset):
    result = _plan(cpu_toolset, "Sharpen it a little. Our designer noticed the focus was slightly off.")
    assert _tools(result) == {"SHARPEN"}


def test_a_whole_photo_in_a_plain_colour_names_no_part(cpu_toolset):
    assert not _plan(cpu_toolset, "its colour should be orange").ok  # which part? never a warm cast instead
    assert _tools(_plan(cpu_toolset, "tint the whole picture blue")) == {"ADJUST"}  # a cast


def test_capitals_at_a_place_are_words_to_write(cpu_toolset):
    result = _plan(cpu_toolset, "warmer, and OPEN LATE at the bottom middle, white letters")
    assert _tools(result) == {"ADJUST", "TEXT"}
    assert _values(result, "prompt") == ["OPEN LATE"] and _values(result, "position") == ["bottom"]


def test_there_is_a_thing_then_remove_it(cpu_toolset):
    result = _plan(cpu_toolset, "there is watermark in the corner, remove it please")
    assert _tools(result) == {"RES", "INPAINT"}


def test_a_complaint_about_the_backdrop_then_a_colour_for_it(cpu_toolset):
    result = _plan(cpu_toolset, "the grey backdrop is so dull, please swap it for a flat lilac colour")
    assert _tools(result) == {"SOS", "CBG"}
    assert _values(result, "prompt") == ["lilac"]


def test_a_missing_thing_is_wished_added_and_a_missing_tone_is_not(cpu_toolset):
    assert not _plan(cpu_toolset, "brighter please, there is no moon in the sky").ok
    assert _tools(_plan(cpu_toolset, "it looks flat, there is no depth at all")) == {"ADJUST"}


@pytest.mark.parametrize("instruction", [
    "make the photo wider so we can see more of the garden on both sides",
    "denoise it and stretch it out wider so there's more lawn on each side",
])
def test_wider_to_see_more_is_showing_more_than_the_photo_holds(cpu_toolset, instruction):
    result = _plan(cpu_toolset, instruction)
    assert not result.ok and "outpaint" in result.error


def test_a_colour_word_said_with_a_temperature_is_the_same_change(cpu_toolset):
    result = _plan(cpu_toolset, "Only the sky: make it a touch cooler and bluer.")
    assert _tools(result) == {"RES", "ADJUST"}
    assert _values(result, "temperature")[0] < 0


def test_see_the_thing_points_at_what_the_request_is_about(cpu_toolset):
    result = _plan(cpu_toolset, "See the mug on the left? Blur everything around it a little.")
    assert _tools(result) == {"SOS", "INVERSE", "BLUR"}
    result = _plan(cpu_toolset, "Notice the man by the door? His hair looks dull in this print, warm it up a touch.")
    assert _tools(result) == {"RES", "ADJUST"}


def test_swapping_a_thing_to_a_colour_recolours_it(cpu_toolset):
    assert _tools(_plan(cpu_toolset, "swap his jacket to bottle green")) == {"RES", "RCM"}
    assert not _plan(cpu_toolset, "swap the mug for a teapot").ok


def test_trimming_so_only_a_thing_is_left_crops_to_it(cpu_toolset):
    assert _tools(_plan(cpu_toolset, "trim the edges off so it's only his face")) == {"RES", "BBOX", "CROP"}


def test_a_noun_before_is_is_no_verb(cpu_toolset):
    result = _plan(cpu_toolset, "the mug's colour is too muddy - make it coral")
    assert _tools(result) == {"SOS", "RCM"}


def test_what_our_brand_is_asks_nothing(cpu_toolset):
    result = _plan(cpu_toolset, "his jacket is brown but our house style is teal, could you make it teal?")
    assert _tools(result) == {"RES", "RCM"}


def test_in_front_of_a_colour_is_a_background_and_a_coloured_scene_is_not(cpu_toolset):
    result = _plan(cpu_toolset, "I'd love the dog sitting in front of a soft mint-to-white fade")
    assert _tools(result) == {"SOS", "CBG"}
    assert not _plan(cpu_toolset, "put the dog in front of a green jungle with parrots").ok


def test_how_a_look_is_described_after_it_is_no_second_change(cpu_toolset):
    assert _tools(_plan(cpu_toolset, "give it a retro look, washed-out colours and all")) == {"STYLE"}
    assert _tools(_plan(cpu_toolset, "make it a watercolour, and more contrast please")) == {"STYLE", "ADJUST"}
