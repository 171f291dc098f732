"""Copy the pictures docs/features.md shows from the last test run's screenshots.

Run the tests first (``./test.sh tests/features tests/e2e``), then
``.venv/bin/python scripts/feature_pictures.py``: each page's picture is taken from the
screenshot a test saved in test-artifacts/ while driving that page, made smaller and
written to docs/screenshots/. A missing screenshot is named, and nothing is written.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
PICTURES = ROOT / "docs" / "screenshots"
#: The width the pictures are kept at: readable, and small in the repository.
WIDTH = 960

#: docs/screenshots/<name>.png <- test-artifacts/<test>/<file>
SOURCES = (
    ("connect-ksc", "test_blank_fields_and_hidden_sections", "1-connect-ksc.png"),
    (
        "connect-kbh",
        "test_first_page_is_connect_with_blank_field_errors",
        "1-connect-kbh.png",
    ),
    (
        "certificate-and-proxy",
        "test_certificate_and_proxy",
        "10-certificate-and-proxy.png",
    ),
    (
        "create-integration",
        "test_fields_are_all_required_and_business_hub_shows_the_integration_id",
        "1-create-integration-fields.png",
    ),
    (
        "integration-id",
        "test_fields_are_all_required_and_business_hub_shows_the_integration_id",
        "3-integration-id.png",
    ),
    (
        "add-servers",
        "test_first_start_walks_the_setup_and_later_starts_open_the_dashboard",
        "2-add-servers.png",
    ),
    (
        "add-companies",
        "test_add_companies_with_filter_and_select_all",
        "10-companies-ticked.png",
    ),
    (
        "accounts-grid",
        "test_billing_needs_the_account_cross_referenced_to_the_external_product",
        "2-grid-warns-after-saving.png",
    ),
    (
        "accounts-not-integrated",
        "test_accounts_not_integrated_lists_both_sides",
        "1-ksc-not-integrated.png",
    ),
    (
        "dashboard",
        "test_readable_log_filterable_and_per_account_last_run_and_error_with_advice",
        "1-dashboard-with-an-error.png",
    ),
    (
        "properties",
        "test_name_links_to_properties_edit_new_integration_and_delete",
        "1-properties.png",
    ),
    (
        "delete-asks-first",
        "test_name_links_to_properties_edit_new_integration_and_delete",
        "4-delete-asks-first.png",
    ),
    (
        "settings-general-and-events",
        "test_events_one_row_per_severity_with_lifetime_edit_cancel_reset",
        "2-edited-and-saved.png",
    ),
    (
        "settings-device-status",
        "test_device_status_warning_and_critical_sections_with_priority_and_type",
        "1-status-sections.png",
    ),
    (
        "settings-price-book",
        "test_bill_devices_by_category_per_user_application_one_item_office365_per_mailbox",
        "1-by-category.png",
    ),
    (
        "billing-preview",
        "test_recount_from_scratch_each_run_by_stable_device_id_with_the_rule",
        "1-preview-with-rules.png",
    ),
    (
        "history",
        "test_preview_approved_before_the_first_live_write_and_every_change_in_history",
        "3-history.png",
    ),
    (
        "administrators",
        "test_administrators_added_as_email_alias_removed_by_ticking_never_the_last",
        "2-added.png",
    ),
    (
        "log",
        "test_readable_log_filterable_and_per_account_last_run_and_error_with_advice",
        "3-log-filtered.png",
    ),
    (
        "config-settings",
        "test_config_settings_are_written_to_the_file",
        "config-saved.png",
    ),
    (
        "config-error-banner",
        "test_config_file_edited_by_hand_is_validated_and_applied_live",
        "2-bad-value.png",
    ),
    ("tray-menu", "test_icon_menu_sync_and_quit", "3-menu.png"),
)


def main() -> int:
    """Copy every picture, or name the missing screenshots and copy none."""
    missing = [
        f"{test}/{file}"
        for _, test, file in SOURCES
        if not (ARTIFACTS / test / file).is_file()
    ]
    if missing:
        print("Run the tests first; these screenshots are missing:", file=sys.stderr)
        for path in missing:
            print(f"  test-artifacts/{path}", file=sys.stderr)
        return 1

    PICTURES.mkdir(parents=True, exist_ok=True)
    for name, test, file in SOURCES:
        with Image.open(ARTIFACTS / test / file) as picture:
            smaller = _narrower(picture.convert("RGB"))
            # 256 colours are plenty for a page of text and keep the file small.
            smaller.quantize(256).save(PICTURES / f"{name}.png", optimize=True)
    print(f"Wrote {len(SOURCES)} pictures to {PICTURES.relative_to(ROOT)}")
    return 0


def _narrower(picture: Image.Image) -> Image.Image:
    """The picture at WIDTH pixels wide at most, in proportion."""
    if picture.width <= WIDTH:
        return picture
    height = round(picture.height * WIDTH / picture.width)
    return picture.resize((WIDTH, height), Image.Resampling.LANCZOS)


if __name__ == "__main__":
    sys.exit(main())
