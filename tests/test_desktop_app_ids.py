"""The apps each common Linux desktop installs by default are categorised by the bundled rules, under the names
its sessions report: Wayland app ids (org.gnome.Terminal, org.kde.konsole) and X11 class names alike."""

from __future__ import annotations

import pytest

from tracker.categories.files import bundled_categories_path, load_categories
from tracker.model import Sample, utc_now

# What the window of each default app is called on that desktop: the app id on Wayland (GNOME's from the
# .desktop file, KDE's desktopFileName, wlroots' xdg app_id), then its X11 class name where that differs.
DEFAULT_APPS = {
    "GNOME": ["org.gnome.Terminal", "org.gnome.Console", "org.gnome.Nautilus", "org.gnome.TextEditor",
              "org.gnome.Calculator", "org.gnome.Settings", "org.gnome.Software", "org.gnome.SystemMonitor",
              "org.gnome.Evince", "org.gnome.Papers", "org.gnome.Loupe", "org.gnome.Calendar",
              "org.gnome.Contacts", "org.gnome.Maps", "org.gnome.Weather", "org.gnome.clocks", "org.gnome.Totem",
              "org.gnome.Music", "org.gnome.Epiphany", "org.gnome.Characters", "org.gnome.font-viewer",
              "org.gnome.Logs", "org.gnome.baobab", "org.gnome.DiskUtility", "org.gnome.Snapshot",
              "org.gnome.Extensions", "org.gnome.Tour", "org.gnome.Yelp", "org.gnome.Boxes", "org.gnome.Geary",
              "firefox", "org.mozilla.firefox", "org.mozilla.Thunderbird", "gnome-terminal-server"],
    "KDE Plasma": ["org.kde.konsole", "org.kde.dolphin", "org.kde.kate", "org.kde.kwrite", "org.kde.okular",
                   "org.kde.gwenview", "org.kde.ark", "org.kde.spectacle", "org.kde.systemsettings",
                   "systemsettings", "org.kde.discover", "org.kde.kcalc", "org.kde.plasma-systemmonitor",
                   "org.kde.kinfocenter", "org.kde.elisa", "org.kde.kmail2", "org.kde.korganizer",
                   "org.kde.kontact", "org.kde.falkon", "org.kde.haruna", "org.kde.dragonplayer", "konsole",
                   "dolphin"],
    "sway and other wlroots": ["foot", "footclient", "kitty", "Alacritty", "wofi", "fuzzel", "bemenu"],
    "browsers and apps from Flatpak": ["com.google.Chrome", "org.chromium.Chromium", "com.brave.Browser",
                                       "com.microsoft.Edge", "com.spotify.Client", "org.videolan.VLC",
                                       "com.valvesoftware.Steam", "code-oss", "codium", "Code"],
}


@pytest.mark.parametrize("desktop", sorted(DEFAULT_APPS))
def test_default_apps_of_each_desktop_are_categorised(desktop: str) -> None:
    rules = load_categories(bundled_categories_path())
    uncategorised = [app for app in DEFAULT_APPS[desktop]
                     if rules.classify(Sample(time=utc_now(), app=app)).category == "Uncategorized"]
    assert uncategorised == [], f"{desktop}: no bundled rule for {uncategorised}"


def test_wayland_and_x11_names_of_one_app_land_in_one_category() -> None:
    rules = load_categories(bundled_categories_path())
    pairs = [("org.gnome.Terminal", "gnome-terminal-server"), ("org.kde.konsole", "konsole"),
             ("org.mozilla.firefox", "firefox"), ("org.kde.dolphin", "dolphin"),
             ("org.chromium.Chromium", "Chromium"), ("org.mozilla.Thunderbird", "Thunderbird")]
    for wayland, x11 in pairs:
        assert (rules.classify(Sample(time=utc_now(), app=wayland)).category
                == rules.classify(Sample(time=utc_now(), app=x11)).category), (wayland, x11)
